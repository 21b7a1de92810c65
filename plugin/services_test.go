//go:build integration

package plugin

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
)

// Two services, each its own store: a create names its service, names are
// unique across both, and each volume is listed once with its service.
func TestServicesShareOneNamespace(t *testing.T) {
	r := newRig(t)
	bulk := r.addService("bulk")
	ctx := context.Background()
	r.create("a", map[string]string{"size": "32MiB"})
	r.create("b", map[string]string{"size": "32MiB", "service": "bulk"})
	if _, err := bulk.Inspect(ctx, "b"); err != nil {
		t.Errorf("b is not in the bulk store: %v", err)
	}
	if _, err := r.drv.Inspect(ctx, "b"); err == nil {
		t.Error("b is in the default store too")
	}
	if got := r.status("b")["service"]; got != "bulk" {
		t.Errorf("Status service of b = %v, want bulk", got)
	}
	if got := r.status("a")["service"]; got != "loopback" {
		t.Errorf("Status service of a = %v, want loopback", got)
	}

	err := r.p.Create(&volume.CreateRequest{Name: "b", Options: map[string]string{"service": "loopback"}})
	if err == nil || !strings.Contains(err.Error(), "taken in service bulk") {
		t.Errorf("create of b in another service = %v, want the name taken in service bulk", err)
	}
	// The same Create again, as Docker re-sends it, is fine.
	r.create("b", map[string]string{"service": "bulk"})
	r.create("b", nil)
	err = r.p.Create(&volume.CreateRequest{Name: "c", Options: map[string]string{"service": "fast"}})
	if err == nil || !strings.Contains(err.Error(), `unknown service "fast": this endpoint has loopback, bulk`) {
		t.Errorf("create in an unknown service = %v", err)
	}
	err = r.p.Create(&volume.CreateRequest{Name: "c", Options: map[string]string{"volumeName": "b", "service": "loopback"}})
	if err == nil || !strings.Contains(err.Error(), "volume b is in service bulk") {
		t.Errorf("copy across services = %v", err)
	}
	r.create("c", map[string]string{"volumeName": "b"})
	if got := r.status("c")["service"]; got != "bulk" {
		t.Errorf("a copy of b is in service %v, want bulk", got)
	}

	// A restart rebuilds the catalogue from both stores.
	r.restart()
	list, err := r.p.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list.Volumes {
		names = append(names, v.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("List = %v, want a, b, c once each", names)
	}
	path := r.mount("b", "x")
	if err := os.WriteFile(path+"/f", []byte("bulk"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.unmount("b", "x")
	for _, n := range []string{"a", "b", "c"} {
		if err := r.p.Remove(&volume.RemoveRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if vols, _ := bulk.List(ctx); len(vols) != 0 {
		t.Errorf("bulk store still holds %v", vols)
	}
}

func (r *rig) status(name string) map[string]any {
	r.t.Helper()
	got, err := r.p.Get(&volume.GetRequest{Name: name})
	if err != nil {
		r.t.Fatal(err)
	}
	return got.Volume.Status
}
