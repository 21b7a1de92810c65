package engine

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount"
)

// host is one engine of a cluster whose hosts share a memdriver store:
// its own ledger, its own (fake) OS, its own instance ID.
type host struct {
	t    *testing.T
	e    *Engine
	os   *fakeOS
	drv  *memdriver.Driver
	led  *ledger.Store
	logs *test.Hook
	cfg  config.Config
	dir  string
	// crypt, when set, stands for dm-crypt in every engine started.
	crypt Crypt
}

func newHost(t *testing.T, store *memdriver.Store, id string, os *fakeOS, set func(*config.Config)) *host {
	t.Helper()
	cfg := config.Config{FSType: "ext4", InstanceID: id, LinuxRootPath: "/data"}
	cfg.Ops = config.Operations{MountPath: "/fake/mnt", CreateDefaultSize: "1", CreateImplicit: true}
	if set != nil {
		set(&cfg)
	}
	os.wrote = func(name string) { store.Write(name) }
	h := &host{t: t, os: os, drv: store.Driver(id), cfg: cfg, dir: t.TempDir()}
	h.start()
	return h
}

// start runs a new engine over the host's ledger, as a restarted plugin.
func (h *host) start() {
	h.t.Helper()
	if h.led != nil {
		h.led.Close()
	}
	led, err := ledger.Open(filepath.Join(h.dir, "state"), time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { led.Close() })
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	h.led, h.logs = led, hook
	h.e = New(h.cfg, []Service{{Name: "mem", Driver: h.drv}}, h.os, led, log)
	if h.crypt != nil {
		h.e.crypt = h.crypt
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	h.e.Run(ctx)
}

func docker(id string) ledger.Hold { return ledger.DockerHold(id) }

func (h *host) create(name string, opts map[string]string) {
	h.t.Helper()
	if err := h.e.Create(context.Background(), name, opts); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) mount(name string, hold ledger.Hold) string {
	h.t.Helper()
	path, err := h.e.Mount(context.Background(), name, hold, false)
	if err != nil {
		h.t.Fatal(err)
	}
	return path
}

func (h *host) unmount(name string, hold ledger.Hold) {
	h.t.Helper()
	if err := h.e.Unmount(context.Background(), name, hold); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) mounted(name string) bool {
	ok, _ := h.os.IsMounted(name)
	return ok
}

func (h *host) holds(name string) int {
	holds, err := h.led.Holds(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(holds)
}

// attached tells whether the platform has the volume attached to this host.
func (h *host) attached(name string) bool {
	v, err := h.drv.Inspect(context.Background(), name)
	return err == nil && v.Device != ""
}

func TestHoldsAreCountedAndTheLastReleases(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("v", map[string]string{"size": "64MiB"})
	p1, p2 := h.mount("v", docker("c1")), h.mount("v", docker("c2"))
	if p1 != p2 || p1 != h.os.Path("v") {
		t.Errorf("mount paths %q and %q, want both %q", p1, p2, h.os.Path("v"))
	}
	h.unmount("v", docker("c1"))
	if !h.mounted("v") || !h.attached("v") {
		t.Fatal("released while c2 still holds it")
	}
	h.unmount("v", docker("c2"))
	if h.mounted("v") || h.attached("v") {
		t.Error("still mounted or attached after the last hold went")
	}
	if holds, _ := h.led.Holds("v"); len(holds) != 0 {
		t.Errorf("ledger still holds %v", holds)
	}
}

func TestTheLegacyHoldIsSharedAndOneUnmountReleases(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	legacy := ledger.Hold{Kind: ledger.Legacy}
	h.create("v", nil)
	h.mount("v", legacy)
	h.mount("v", legacy) // a second client with no mount ID
	h.unmount("v", legacy)
	if h.mounted("v") || h.attached("v") {
		t.Error("the first unmount with no ID did not release the volume, as the original dvdcli expects")
	}
}

func TestAFilesystemIsMadeOnceAcrossHosts(t *testing.T) {
	store, osA := memdriver.NewStore(), newFakeOS()
	a := newHost(t, store, "a", osA, nil)
	b := newHost(t, store, "b", osA.shared(), nil)
	a.create("v", nil)
	a.mount("v", docker("c1"))
	if got := osA.mountAs["v"]; got != mount.Zeros {
		t.Errorf("first mount of a new volume assumed %v, want Zeros (never written)", got)
	}
	a.unmount("v", docker("c1"))
	b.mount("v", docker("c2"))
	if got := b.os.mountAs["v"]; got != mount.Existing {
		t.Errorf("host b's mount assumed %v, want Existing: host a formatted it", got)
	}
	if osA.formats+b.os.formats != 1 {
		t.Errorf("%d mkfs runs, want 1", osA.formats+b.os.formats)
	}
}

func TestAVolumeAnotherHostHoldsIsRefusedThenPreempted(t *testing.T) {
	store, osA := memdriver.NewStore(), newFakeOS()
	a := newHost(t, store, "a", osA, nil)
	b := newHost(t, store, "b", osA.shared(), nil)
	a.create("v", nil)
	a.mount("v", docker("c1"))

	_, err := b.e.Mount(context.Background(), "v", docker("c2"), false)
	var held *drivers.HeldError
	if !errors.As(err, &held) || !strings.Contains(err.Error(), "REXRAY_PREEMPT=true") {
		t.Fatalf("host b's mount of a volume host a holds: %v; want it held, and how to preempt", err)
	}
	if !a.mounted("v") || !a.attached("v") || b.mounted("v") {
		t.Fatal("a refused mount changed who has the volume")
	}

	b.cfg.Preempt = true
	b.start()
	b.mount("v", docker("c2"))
	if !b.attached("v") {
		t.Fatal("host b preempted, but the volume is not attached to it")
	}
	// Host a's watcher hears of it and fences its side; the ledger
	// forgetting its holds is the fence's last step.
	deadline := time.Now().Add(10 * time.Second)
	for a.holds("v") > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := a.holds("v"); n != 0 {
		t.Fatalf("host a's ledger still holds %d hold(s) of the volume host b took", n)
	}
	if !slices.Contains(osA.fencedNames(), "v") || a.mounted("v") {
		t.Error("host a forgot its holds without shutting the filesystem down")
	}
}

func TestRemoveOfAVolumeInUseIsRefused(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("v", nil)
	h.mount("v", docker("c1"))
	err := h.e.Remove(context.Background(), "v")
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "in use by 1 container mount") {
		t.Fatalf("remove of a mounted volume: %v", err)
	}
	if _, err := h.drv.Inspect(context.Background(), "v"); err != nil {
		t.Fatalf("the refused remove lost the volume: %v", err)
	}
	h.unmount("v", docker("c1"))
	if err := h.e.Remove(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.drv.Inspect(context.Background(), "v"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("after remove: %v, want not found", err)
	}
}

func TestCreateAgainAcceptsTheSameAndRefusesOtherOptions(t *testing.T) {
	store := memdriver.NewStore()
	a := newHost(t, store, "a", newFakeOS(), nil)
	b := newHost(t, store, "b", newFakeOS(), nil)
	a.create("v", map[string]string{"size": "2"})
	b.create("v", map[string]string{"size": "2"})
	b.create("v", nil)
	err := b.e.Create(context.Background(), "v", map[string]string{"size": "3"})
	if !errors.Is(err, drivers.ErrExists) || !strings.Contains(err.Error(), "exists and differs") {
		t.Fatalf("create with another size: %v", err)
	}
	if v, _ := a.drv.Inspect(context.Background(), "v"); v.Size != 2<<30 {
		t.Errorf("size is %d after the refused create, want 2 GiB", v.Size)
	}
}

func TestTheOperatorsAttachHoldsTheDevice(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("v", nil)
	if _, err := h.e.Attach(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	h.mount("v", docker("c1"))
	if err := h.e.Detach(context.Background(), "v"); err == nil || !strings.Contains(err.Error(), "in use by 1 mount") {
		t.Fatalf("detach under a container: %v", err)
	}
	h.unmount("v", docker("c1"))
	if h.mounted("v") || !h.attached("v") {
		t.Fatal("after the container's unmount: want unmounted and still attached for the operator")
	}
	if err := h.e.Detach(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if h.attached("v") {
		t.Error("attached after detach")
	}
}

func TestADriverWithoutSnapshotsIsRefusedByName(t *testing.T) {
	store := memdriver.NewStore()
	led, err := ledger.Open(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	log, _ := test.NewNullLogger()
	cfg := config.Config{FSType: "ext4", InstanceID: "a"}
	cfg.Ops = config.Operations{MountPath: "/fake/mnt", CreateDefaultSize: "1"}
	e := New(cfg, []Service{{Name: "plain", Driver: coreOnly{store.Driver("a")}}}, newFakeOS(), led, log)
	e.Run(context.Background())
	if err := e.Create(context.Background(), "v", nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.CreateSnapshot(context.Background(), "v", "s")
	if !errors.Is(err, drivers.ErrUnsupported) || !strings.Contains(err.Error(), "does not support snapshots") {
		t.Errorf("snapshot on a driver without snapshots: %v", err)
	}
}

// coreOnly is a driver with the core and nothing else.
type coreOnly struct{ drivers.Driver }

func TestEveryLineOfACallCarriesItsFields(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.logs.Reset()
	h.create("v", nil)
	h.mount("v", docker("c1"))
	entries := h.logs.AllEntries()
	if len(entries) == 0 {
		t.Fatal("nothing logged at debug level")
	}
	reqs := map[string]bool{}
	for _, e := range entries {
		for _, f := range []string{"volume", "op", "req"} {
			if e.Data[f] == nil {
				t.Errorf("line %q has no %s field: %v", e.Message, f, e.Data)
			}
		}
		reqs[e.Data["req"].(string)] = true
	}
	if len(reqs) != 2 {
		t.Errorf("two calls logged with %d request IDs, want 2", len(reqs))
	}
}

func TestARestartAfterAHostRebootForgetsTheHolds(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("v", nil)
	h.mount("v", docker("c1"))
	// The host reboots: nothing is mounted, nothing attached.
	h.os = h.os.shared()
	h.drv.Detach(context.Background(), "v")
	h.start()
	if holds, _ := h.led.Holds("v"); len(holds) != 0 {
		t.Errorf("after the reboot the ledger holds %v", holds)
	}
}

func TestARestartUnderARunningContainerKeepsItsHold(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("v", nil)
	h.mount("v", docker("c1"))
	// The container's bind of the volume, in its own mount namespace,
	// keeps the device busy while the plugin restarts.
	v, _ := h.drv.Inspect(context.Background(), "v")
	h.os.busy[v.Device] = true
	h.start()
	if holds, _ := h.led.Holds("v"); !slices.Equal(holds, []ledger.Hold{docker("c1")}) {
		t.Fatalf("after the restart the ledger holds %v, want c1's", holds)
	}
	if err := h.e.Remove(context.Background(), "v"); err == nil {
		t.Error("removed a volume a running container holds")
	}
	h.unmount("v", docker("c1"))
	if h.mounted("v") || h.attached("v") {
		t.Error("the container's unmount after the restart did not release the volume")
	}
}

func TestANameIsEitherAClassicOrAClusterVolume(t *testing.T) {
	store := memdriver.NewStore()
	a := newHost(t, store, "a", newFakeOS(), nil)
	b := newHost(t, store, "b", newFakeOS(), nil)
	if err := a.e.CreateCluster(context.Background(), "cv", nil); err != nil {
		t.Fatal(err)
	}
	err := b.e.Create(context.Background(), "cv", nil)
	if !errors.Is(err, drivers.ErrExists) || !strings.Contains(err.Error(), "taken by a Swarm cluster volume") {
		t.Errorf("a classic create of a cluster volume's name on another host: %v", err)
	}
	a.create("classic", nil)
	err = b.e.CreateCluster(context.Background(), "classic", nil)
	if !errors.Is(err, drivers.ErrExists) || !strings.Contains(err.Error(), "taken by a classic volume") {
		t.Errorf("a cluster create of a classic volume's name: %v", err)
	}
	names, err := a.e.Names(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range names {
		if st.Cluster != (st.Name == "cv") {
			t.Errorf("%s listed with Cluster %v", st.Name, st.Cluster)
		}
	}
}
