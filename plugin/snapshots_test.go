//go:build integration

package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/rexray/rexray/drivers"
)

// A snapshot of a volume in use holds what was written before it, a volume
// made from it holds the same, and both outlive the volume.
func TestSnapshotOfMountedVolume(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.create("db", map[string]string{"size": "32MiB"})
	path := r.mount("db", "a")
	if err := os.WriteFile(filepath.Join(path, "f"), []byte("before"), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := r.p.CreateSnapshot(ctx, "db", "db-1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.VolumeName != "db" || snap.Size != 32<<20 || snap.FSType != "ext4" || snap.Service != "loopback" {
		t.Errorf("snapshot %+v", snap)
	}
	if err := os.WriteFile(filepath.Join(path, "g"), []byte("after"), 0o600); err != nil {
		t.Fatalf("volume not writable after the snapshot: %v", err)
	}
	if got := r.fields("db")["snapshots"]; got != "db-1" {
		t.Errorf("Status fields.snapshots = %q, want db-1", got)
	}
	r.unmount("db", "a")
	if err := r.p.Remove(&volume.RemoveRequest{Name: "db"}); err != nil {
		t.Fatal(err)
	}

	r.create("restored", map[string]string{"snapshotName": "db-1"})
	if got := r.fields("restored")["snapshot"]; got != "db-1" {
		t.Errorf("Status fields.snapshot = %q, want db-1", got)
	}
	rp := r.mount("restored", "b")
	if b, err := os.ReadFile(filepath.Join(rp, "f")); string(b) != "before" {
		t.Errorf("restored volume holds %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(rp, "g")); !os.IsNotExist(err) {
		t.Errorf("restored volume holds a file written after the snapshot: %v", err)
	}
	r.unmount("restored", "b")
	// Docker re-sends Create with the same options: nothing changes.
	r.create("restored", map[string]string{"snapshotID": "db-1"})

	if err := r.p.RemoveSnapshot(ctx, "db-1"); err != nil {
		t.Fatal(err)
	}
	if snaps, err := r.p.Snapshots(ctx); err != nil || len(snaps) != 0 {
		t.Errorf("Snapshots after rm = %v, %v", snaps, err)
	}
	if _, err := r.p.Get(&volume.GetRequest{Name: "restored"}); err != nil {
		t.Errorf("a volume made from a removed snapshot: %v", err)
	}
}

func TestSnapshotRefusals(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.create("v", map[string]string{"size": "32MiB"})
	if _, err := r.p.CreateSnapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		err  error
		want string
	}{
		{second(r.p.CreateSnapshot(ctx, "v", "s")), "snapshot already exists"},
		{second(r.p.CreateSnapshot(ctx, "nope", "s2")), "volume nope: volume not found"},
		{second(r.p.CreateSnapshot(ctx, "v", "../x")), "invalid snapshot name"},
		{r.p.RemoveSnapshot(ctx, "nope"), "snapshot nope: snapshot not found"},
		{r.p.Create(&volume.CreateRequest{Name: "c", Options: map[string]string{"snapshotName": "nope"}}), "snapshot nope: snapshot not found"},
		{r.p.Create(&volume.CreateRequest{Name: "c", Options: map[string]string{"snapshotName": "s", "volumeName": "v"}}), "not both"},
		{r.p.Create(&volume.CreateRequest{Name: "c", Options: map[string]string{"snapshotName": "s", "size": "16MiB"}}), "cannot shrink"},
		{r.p.Create(&volume.CreateRequest{Name: "c", Options: map[string]string{"snapshotName": "s", "newfstype": "xfs", "size": "512MiB"}}), "keeps its filesystem (ext4)"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("got %v, want an error with %q", c.err, c.want)
		}
	}
	if _, err := r.p.Get(&volume.GetRequest{Name: "c"}); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("a refused create left volume c: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

// fields is a volume's Status "fields", as docker volume inspect shows.
func (r *rig) fields(name string) map[string]string {
	r.t.Helper()
	got, err := r.p.Get(&volume.GetRequest{Name: name})
	if err != nil {
		r.t.Fatal(err)
	}
	return got.Volume.Status["fields"].(map[string]string)
}
