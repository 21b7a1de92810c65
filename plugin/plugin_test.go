//go:build integration

package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/mount/mounttest"
)

// rig is a plugin over real parts in temporary folders: a loopback store,
// loop devices, mkfs and mounts. restart builds a new plugin over the same
// folders, as Docker does when it restarts the plugin.
type rig struct {
	t   testing.TB
	dir string
	cfg config.Config
	drv *loopback.Driver
	// more are services beside the default "loopback" one over drv.
	more []engine.Service
	st   *ledger.Store
	p    *Plugin
	mnt  *mount.Mounter
}

func newRig(t testing.TB) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the plugin tests need root: loop devices and mounts")
	}
	r := &rig{t: t, dir: t.TempDir()}
	r.cfg = config.Config{FSType: "ext4", LinuxRootPath: "/data", LinuxFileMode: 0o700}
	r.cfg.Ops = config.Operations{MountPath: filepath.Join(r.dir, "mnt"), CreateImplicit: true, CreateDefaultSize: "64MiB"}
	drv, err := loopback.New(loopback.Config{VolumePath: filepath.Join(r.dir, "store"), DirectIO: true, Instance: "h1", Overcommit: true})
	if err != nil {
		t.Fatal(err)
	}
	r.drv = drv
	r.restart()
	t.Cleanup(r.cleanup)
	return r
}

func (r *rig) restart() {
	r.t.Helper()
	if r.st != nil {
		r.st.Close()
	}
	st, err := ledger.Open(filepath.Join(r.dir, "state"), time.Second)
	if err != nil {
		r.t.Fatal(err)
	}
	r.st = st
	r.mnt = &mount.Mounter{Root: r.cfg.Ops.MountPath, DataDir: r.cfg.RootPath(), DataMode: 0o700}
	log := logrus.New()
	log.SetOutput(testWriter{r.t})
	r.p = newPlugin(r.cfg, append([]engine.Service{{Name: "loopback", Driver: r.drv}}, r.more...), r.mnt, st, log)
	r.p.eng.Restore(context.Background())
}

// cleanup releases whatever a failing test left mounted or attached.
func (r *rig) cleanup() {
	ctx := context.Background()
	for _, s := range append([]engine.Service{{Driver: r.drv}}, r.more...) {
		vols, _ := s.Driver.List(ctx)
		for _, v := range vols {
			r.mnt.Unmount(ctx, v.Name)
			s.Driver.Detach(ctx, v.Name)
		}
	}
	r.st.Close()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// addService adds a loopback service with its own store and restarts.
func (r *rig) addService(name string) *loopback.Driver {
	r.t.Helper()
	drv, err := loopback.New(loopback.Config{VolumePath: filepath.Join(r.dir, name), DirectIO: true, Instance: "h1", Overcommit: true})
	if err != nil {
		r.t.Fatal(err)
	}
	r.more = append(r.more, engine.Service{Name: name, Driver: drv})
	r.restart()
	return drv
}

func (r *rig) create(name string, opts map[string]string) {
	r.t.Helper()
	if err := r.p.Create(&volume.CreateRequest{Name: name, Options: opts}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) mount(name, id string) string {
	r.t.Helper()
	res, err := r.p.Mount(&volume.MountRequest{Name: name, ID: id})
	if err != nil {
		r.t.Fatal(err)
	}
	return res.Mountpoint
}

func (r *rig) unmount(name, id string) {
	r.t.Helper()
	if err := r.p.Unmount(&volume.UnmountRequest{Name: name, ID: id}); err != nil {
		r.t.Fatal(err)
	}
}

// held reports whether the volume is mounted and attached on the host.
func (r *rig) held(name string) bool {
	r.t.Helper()
	mounted, err := r.mnt.IsMounted(name)
	if err != nil {
		r.t.Fatal(err)
	}
	v, err := r.drv.Inspect(context.Background(), name)
	if err != nil {
		r.t.Fatal(err)
	}
	if mounted != (v.Device != "") {
		r.t.Fatalf("%s: mounted=%v but device=%q", name, mounted, v.Device)
	}
	return mounted
}

func TestMountIDsAreCounted(t *testing.T) {
	r := newRig(t)
	r.create("v", map[string]string{"size": "64MiB"})
	path := r.mount("v", "a")
	if path != filepath.Join(r.cfg.Ops.MountPath, "v", "data") {
		t.Errorf("mountpoint %s", path)
	}
	if again := r.mount("v", "a"); again != path {
		t.Errorf("repeated ID: %s", again)
	}
	r.mount("v", "b")
	r.unmount("v", "a")
	if !r.held("v") {
		t.Fatal("released while b still holds it")
	}
	// A repeated ID was counted once: after a and b, nothing holds it.
	r.unmount("v", "unknown")
	if !r.held("v") {
		t.Fatal("an unknown ID released it")
	}
	r.unmount("v", "b")
	if r.held("v") {
		t.Fatal("still held after the last unmount")
	}
}

func TestCountsSurviveRestart(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	path := r.mount("v", "a")
	os.WriteFile(filepath.Join(path, "f"), []byte("x"), 0o600)
	c := mounttest.Bind(t, path) // the container
	r.restart()
	get, err := r.p.Get(&volume.GetRequest{Name: "v"})
	if err != nil || get.Volume.Mountpoint != path {
		t.Fatalf("Get after restart: %+v, %v", get, err)
	}
	c.Stop()
	r.unmount("v", "a")
	if r.held("v") {
		t.Fatal("the restarted plugin did not release on the last unmount")
	}
}

// After a reboot the devices are gone and the ledger's IDs are stale.
func TestRestoreForgetsMountsOfADeadHost(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	r.mount("v", "a")
	ctx := context.Background()
	r.mnt.Unmount(ctx, "v")
	r.drv.Detach(ctx, "v")
	r.restart()
	if ids, _ := r.st.Holds("v"); len(ids) != 0 {
		t.Errorf("ledger still holds %v", ids)
	}
	r.mount("v", "b")
	r.unmount("v", "b")
	if r.held("v") {
		t.Fatal("held after its only mount ended")
	}
}

// A crash between mount and ledger write leaves a mount nobody holds.
func TestRestoreReleasesOrphanMounts(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	r.mount("v", "a")
	r.st.ClearHolds("v")
	r.restart()
	if r.held("v") {
		t.Fatal("orphan mount kept")
	}
}

func TestConcurrentMountsAttachOnce(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.p.Mount(&volume.MountRequest{Name: "v", ID: fmt.Sprint(i)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ids, _ := r.st.Holds("v"); len(ids) != 16 {
		t.Errorf("%d IDs recorded, want 16", len(ids))
	}
	vols, _ := r.drv.List(context.Background())
	if len(vols) != 1 || vols[0].Device == "" {
		t.Fatalf("volumes %+v", vols)
	}
	for i := range 16 {
		r.unmount("v", fmt.Sprint(i))
	}
	if r.held("v") {
		t.Fatal("held after every unmount")
	}
}

func TestCreateIsIdempotentAndChecked(t *testing.T) {
	r := newRig(t)
	r.create("v", map[string]string{"size": "64MiB"})
	r.create("v", nil)
	r.create("v", map[string]string{"Size": "64MiB"})
	err := r.p.Create(&volume.CreateRequest{Name: "v", Options: map[string]string{"size": "1"}})
	if err == nil || !strings.Contains(err.Error(), "size is 64MiB, not 1GiB") {
		t.Errorf("Create with another size = %v", err)
	}
}

func TestImplicitCreateAndStatus(t *testing.T) {
	r := newRig(t)
	r.mount("implicit", "a")
	get, err := r.p.Get(&volume.GetRequest{Name: "implicit"})
	if err != nil {
		t.Fatal(err)
	}
	s := get.Volume.Status
	if s["size"] != 0.0625 || s["service"] != "loopback" || s["name"] != "implicit" {
		t.Errorf("status %v", s)
	}
	if _, err := time.Parse(time.RFC3339, get.Volume.CreatedAt); err != nil {
		t.Error(err)
	}
	r.unmount("implicit", "a")

	r.cfg.Ops.CreateImplicit = false
	r.restart()
	if _, err := r.p.Mount(&volume.MountRequest{Name: "nope", ID: "a"}); err == nil {
		t.Error("Mount of a missing volume with implicit create off succeeded")
	}
}

func TestRemove(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	r.mount("v", "a")
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Remove in use = %v", err)
	}
	r.unmount("v", "a")
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if list, _ := r.p.List(); len(list.Volumes) != 0 {
		t.Errorf("listed after remove: %v", list.Volumes)
	}
	// dockerd only sends Remove again as a retry: it succeeds.
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Errorf("repeated Remove = %v", err)
	}
	for range 2 {
		err := r.p.Remove(&volume.RemoveRequest{Name: "never"})
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Remove of a volume that never was = %v, want not found", err)
		}
	}
}

// A Remove killed after the store dropped the volume, before the plugin
// answered: dockerd's retry must succeed, or the volume is stuck in Docker.
func TestRemoveRetriedAfterCrash(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	now := time.Now()
	r.st.MarkRemoving("v", now, now)
	if err := r.drv.Remove(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	r.restart() // the catalogue is rebuilt from the store: v is not in it
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Fatalf("retried Remove = %v", err)
	}
	// A new volume of the name is a new volume.
	r.create("v", nil)
	if _, err := r.p.Get(&volume.GetRequest{Name: "v"}); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveDisableKeepsData(t *testing.T) {
	r := newRig(t)
	r.cfg.Ops.RemoveDisable = true
	r.restart()
	r.create("v", nil)
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.drv.Inspect(context.Background(), "v"); err != nil {
		t.Errorf("volume gone with remove disabled: %v", err)
	}
}

// Docker 1.11's protocol (the original dvdcli) sends Mount and Unmount with
// no ID: they share one legacy holder, which survives a restart like any
// other, counts beside dockerd's IDs, and whose first Unmount releases it.
func TestMountsWithNoIDShareOneLegacyHolder(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	path := r.mount("v", "")
	if again := r.mount("v", ""); again != path {
		t.Errorf("second Mount with no ID: %s, want %s", again, path)
	}
	if ids, _ := r.st.Holds("v"); len(ids) != 1 || ids[0] != (ledger.Hold{Kind: ledger.Legacy}) {
		t.Errorf("ledger holds %q, want the one legacy holder %q", ids, "rexray:legacy")
	}
	r.restart()
	if !r.held("v") {
		t.Fatal("the legacy hold was lost at restart")
	}
	r.mount("v", "a")
	r.unmount("v", "")
	if !r.held("v") {
		t.Fatal("an Unmount with no ID released a volume that mount ID a holds")
	}
	r.mount("v", "")
	r.unmount("v", "a")
	if !r.held("v") {
		t.Fatal("released while the legacy holder holds it")
	}
	r.unmount("v", "")
	if r.held("v") {
		t.Fatal("still held after the legacy holder's Unmount")
	}
	// No client's ID can stand for the legacy holder.
	_, err := r.p.Mount(&volume.MountRequest{Name: "v", ID: "rexray:legacy"})
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("Mount with ID %q = %v, want it refused as reserved", "rexray:legacy", err)
	}
	if r.held("v") {
		t.Fatal("a refused Mount mounted")
	}
}

// newPlugin is a plugin over its own engine.
func newPlugin(cfg config.Config, services []engine.Service, mnt engine.Mounter, st *ledger.Store, log logrus.FieldLogger) *Plugin {
	return New(engine.New(cfg, services, mnt, st, log), cfg.Ops.CreateImplicit)
}
