package engine

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
	"github.com/rexray/rexray/engine/ledger"
)

var (
	stage   = ledger.Hold{Kind: ledger.CSIStage, ID: "/data/staged/v"}
	publish = ledger.Hold{Kind: ledger.CSI, ID: "/data/published/v"}
	block   = ledger.Hold{Kind: ledger.CSIBlock, ID: "/data/published/b"}
)

func (h *host) attachFor(name string, hold ledger.Hold) string {
	h.t.Helper()
	dev, err := h.e.AttachFor(context.Background(), name, hold)
	if err != nil {
		h.t.Fatal(err)
	}
	return dev
}

// A CSI staging holds the device, a CSI publication and a container the
// filesystem: counted together, the filesystem goes with the last that
// uses it, the device with the last hold.
func TestCSIHoldsAndDockerMountsShareAVolume(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("v", nil)
	dev := h.attachFor("v", stage)
	if !h.attached("v") || h.mounted("v") {
		t.Fatal("a staging attaches the device and mounts nothing")
	}
	if v, _ := h.drv.Inspect(context.Background(), "v"); v.Device != dev {
		t.Errorf("AttachFor gave %s, the volume's device is %s", dev, v.Device)
	}
	if p := h.mount("v", publish); p != h.mount("v", docker("c1")) {
		t.Error("the CSI publication and the container got different mount paths")
	}
	h.unmount("v", publish)
	if !h.mounted("v") {
		t.Fatal("unmounted under the container")
	}
	h.unmount("v", docker("c1"))
	if h.mounted("v") || !h.attached("v") {
		t.Fatal("with the staging left: want the filesystem unmounted and the device attached")
	}
	h.unmount("v", stage)
	if h.attached("v") || h.holds("v") != 0 {
		t.Error("the last hold out did not detach the volume")
	}
}

// A block publication writes the device: the filesystem on it is not
// mounted beside it, nor is the device handed out under a mount.
func TestABlockPublicationAndAMountRefuseEachOther(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("b", nil)
	h.attachFor("b", stage)
	h.attachFor("b", block)
	if _, err := h.e.Mount(context.Background(), "b", docker("c1"), false); !errors.Is(err, ErrInUse) {
		t.Fatalf("mount beside a block publication: %v, want ErrInUse", err)
	}
	if h.mounted("b") {
		t.Fatal("mounted beside a block publication")
	}
	h.unmount("b", block)
	h.mount("b", docker("c1"))
	if _, err := h.e.AttachFor(context.Background(), "b", block); !errors.Is(err, ErrInUse) {
		t.Fatalf("block publication of a mounted volume: %v, want ErrInUse", err)
	}
	if _, err := h.e.AttachFor(context.Background(), "b", publish); !errors.Is(err, ledger.ErrInvalidHold) {
		t.Errorf("AttachFor a hold of the filesystem: %v, want ErrInvalidHold", err)
	}
}

// A plugin restarted under holds of the device alone attaches it again
// and mounts nothing: a block publication's device is never mounted.
func TestARestartKeepsDeviceHoldsUnmounted(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), nil)
	h.create("b", nil)
	h.attachFor("b", block)
	h.start()
	holds, _ := h.led.Holds("b")
	if !slices.Equal(holds, []ledger.Hold{block}) || !h.attached("b") || h.mounted("b") {
		t.Errorf("after the restart: holds %v, attached %v, mounted %v; want the block publication, attached, not mounted",
			holds, h.attached("b"), h.mounted("b"))
	}
	held, err := h.e.Held(context.Background())
	if err != nil || !slices.Equal(held["b"], []ledger.Hold{block}) || len(held) != 1 {
		t.Errorf("Held = %v, %v", held, err)
	}
	if err := h.e.Remove(context.Background(), "b"); !errors.Is(err, ErrInUse) {
		t.Errorf("remove under a block publication: %v, want ErrInUse", err)
	}
}

func TestCapabilitiesAndCapacityAreTheDrivers(t *testing.T) {
	store := memdriver.NewStore()
	store.SetCapacity(3 << 30)
	h := newHost(t, store, "a", newFakeOS(), nil)
	if !Capable[drivers.Snapshotter](h.e) || !Capable[drivers.Capacitor](h.e) || Capable[drivers.Fencer](h.e) {
		t.Error("Capable does not tell memdriver's capabilities")
	}
	h.create("v", map[string]string{"size": "1"})
	if n, err := h.e.Capacity(context.Background(), ""); n != 2<<30 || err != nil {
		t.Errorf("Capacity = %d, %v; want 2 GiB", n, err)
	}
	if _, err := h.e.Capacity(context.Background(), "nosuch"); !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("Capacity of an unknown service: %v, want ErrInvalid", err)
	}
	if _, err := h.e.CreateSnapshot(context.Background(), "v", "s"); err != nil {
		t.Fatal(err)
	}
	if s, err := h.e.Snapshot(context.Background(), "s"); err != nil || s.VolumeName != "v" || s.Service != "mem" {
		t.Errorf("Snapshot = %+v, %v", s, err)
	}
	if _, err := h.e.Snapshot(context.Background(), "none"); !errors.Is(err, drivers.ErrSnapshotNotFound) {
		t.Errorf("Snapshot of a missing one: %v", err)
	}
}
