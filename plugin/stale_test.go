//go:build integration

package plugin

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount/mounttest"
)

// The plugin's own mount is what dockerd unmounts on the host when the
// plugin is disabled, and what a restarted plugin no longer has; a
// container holds the volume through a bind in its own mount namespace
// (mounttest.Bind). These tests play both parts.

// disabled is the plugin disabled and enabled again: its mount is gone,
// the device and the ledger stay.
func (r *rig) disabled(name string) {
	r.t.Helper()
	if err := r.mnt.Unmount(context.Background(), name); err != nil {
		r.t.Fatal(err)
	}
	r.restart()
}

func (r *rig) ids(name string) []ledger.Hold {
	r.t.Helper()
	ids, err := r.st.Holds(name)
	if err != nil {
		r.t.Fatal(err)
	}
	return ids
}

// attachedAnyhow tells whether the volume's image is on a loop device,
// mounted or not.
func (r *rig) attachedAnyhow(name string) bool {
	r.t.Helper()
	v, err := r.drv.Inspect(context.Background(), name)
	if err != nil {
		r.t.Fatal(err)
	}
	return v.Device != ""
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
		t.Fatalf("write in the container's mount: %v", err)
	}
}

// A container removed while the plugin was disabled sent no Unmount: once
// enabled again, the plugin forgets its ID, as no mount of the volume is
// left anywhere, releases the device, and the volume can be removed.
func TestRestoreForgetsMountsNoContainerHolds(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	r.mount("v", "gone")
	r.disabled("v")
	if ids := r.ids("v"); len(ids) != 0 {
		t.Errorf("ledger still holds %v", ids)
	}
	if r.attachedAnyhow("v") || r.held("v") {
		t.Error("still attached or mounted")
	}
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Errorf("Remove = %v", err)
	}
}

// A container still running while the plugin was disabled keeps its mount
// and its data, the volume is refused removal, and once the container
// ends with its Unmount everything is released.
func TestRestoreKeepsMountsAContainerHolds(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	path := r.mount("v", "c")
	c := mounttest.Bind(t, path)
	writeFile(t, c.Dir(), "before", "x")
	r.disabled("v")
	if ids := r.ids("v"); !slices.Equal(ids, []ledger.Hold{ledger.DockerHold("c")}) {
		t.Errorf("ledger holds %v, want [c]", ids)
	}
	if !r.held("v") {
		t.Fatal("not mounted again for the running container")
	}
	err := r.p.Remove(&volume.RemoveRequest{Name: "v"})
	if err == nil || !strings.Contains(err.Error(), "in use by 1 container mount(s)") {
		t.Errorf("Remove of a volume a container uses = %v, want in use", err)
	}
	if !r.held("v") {
		t.Fatal("Remove left the plugin's mount off")
	}
	writeFile(t, c.Dir(), "after", "y")
	if b, err := os.ReadFile(filepath.Join(path, "after")); err != nil || string(b) != "y" {
		t.Errorf("the plugin's mount and the container's differ: %q, %v", b, err)
	}
	c.Stop()
	r.unmount("v", "c")
	if r.attachedAnyhow("v") || r.held("v") {
		t.Error("still held after the container's Unmount")
	}
}

// A plugin killed and restarted keeps its mount (its host side stays): a
// container that went meanwhile is found out at Remove, one that stays
// keeps the volume.
func TestRemoveForgetsMountsOfGoneContainers(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	path := r.mount("v", "a")
	r.mount("v", "b")
	c := mounttest.Bind(t, path)
	r.restart()
	if ids := r.ids("v"); len(ids) != 2 || !r.held("v") {
		t.Fatalf("after restart: ledger %v, held %v; want both IDs, mounted", ids, r.held("v"))
	}
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Remove while a container holds it = %v, want in use", err)
	}
	writeFile(t, c.Dir(), "f", "x")
	c.Stop()
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Fatalf("Remove once no container holds it = %v", err)
	}
	if _, err := r.drv.Inspect(context.Background(), "v"); err == nil {
		t.Error("volume still in the store")
	}
}

// Of two containers, one went while the plugin was disabled: the other's
// Unmount, the last real one, releases the volume.
func TestUnmountReleasesWhenTheRestWereStale(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	path := r.mount("v", "gone")
	r.mount("v", "stays")
	c := mounttest.Bind(t, path)
	r.disabled("v")
	if ids := r.ids("v"); len(ids) != 2 {
		t.Fatalf("ledger %v, want both IDs while a container holds the volume", ids)
	}
	c.Stop()
	r.unmount("v", "stays")
	if r.attachedAnyhow("v") || r.held("v") {
		t.Error("still held after the last live container's Unmount")
	}
	if ids := r.ids("v"); len(ids) != 0 {
		t.Errorf("ledger still holds %v", ids)
	}
}

// An ID mounted since the start may belong to a container being started,
// whose bind is not made yet: it is never judged, and the plugin's mount
// is never taken away to ask.
func TestNewMountIDsAreNotJudged(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	c := mounttest.Bind(t, r.mount("v", "old"))
	r.restart()
	c.Stop() // old is stale from here on
	r.mount("v", "new")
	if err := r.p.Remove(&volume.RemoveRequest{Name: "v"}); err == nil || !strings.Contains(err.Error(), "in use by 2") {
		t.Errorf("Remove = %v, want in use by 2", err)
	}
	if !r.held("v") {
		t.Error("the plugin's mount was taken away")
	}
}

// The operator's holds are kept: they stand for a wish, not a mount.
func TestOperatorHoldsAreNotJudged(t *testing.T) {
	r := newRig(t)
	r.create("v", nil)
	ctx := context.Background()
	if _, err := r.p.MountVolume(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	r.mount("v", "gone")
	r.disabled("v")
	if ids := r.ids("v"); len(ids) != 2 || !r.held("v") {
		t.Errorf("ledger %v, held %v; want both kept and mounted again", ids, r.held("v"))
	}

	r.create("w", nil)
	if _, err := r.p.Attach(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	r.mount("w", "gone")
	r.disabled("w")
	if ids := r.ids("w"); !slices.Equal(ids, []ledger.Hold{{Kind: ledger.OperatorAttach}}) || !r.attachedAnyhow("w") {
		t.Errorf("ledger %v, attached %v; want the operator's attach alone, attached", ids, r.attachedAnyhow("w"))
	}
	if err := r.p.Detach(ctx, "w"); err != nil {
		t.Fatal(err)
	}
}

// deleteImage deletes a volume's image behind the plugin's back, as
// someone with write access to the store may, and returns what identifies
// the file for the loop device that still holds it.
func (r *rig) deleteImage(name string) loopdev.FileID {
	r.t.Helper()
	image := filepath.Join(r.dir, "store", "volumes", name+".img")
	id, err := loopdev.IDOf(image)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.Remove(image); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		if dev := r.boundTo(id); dev != "" {
			loopdev.Detach(dev) // a failed test's
		}
	})
	return id
}

// boundTo is the loop device still bound to the deleted file id, if any.
func (r *rig) boundTo(id loopdev.FileID) string {
	r.t.Helper()
	orphans, err := loopdev.Orphans(loopdev.Tag("h1"))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, o := range orphans {
		if o.File == id {
			return o.Device
		}
	}
	return ""
}

// An image deleted from the store while its volume was mounted: its device
// goes at the last unmount, or at start when nothing mounts it.
func TestDeletedImageIsReleased(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()

	r.create("v1", nil)
	r.mount("v1", "a")
	id := r.deleteImage("v1")
	r.unmount("v1", "a")
	if dev := r.boundTo(id); dev != "" {
		t.Errorf("after the last unmount: %s still bound to the deleted image", dev)
	}

	// Image and metadata deleted, the plugin down meanwhile.
	r.create("v2", nil)
	r.mount("v2", "a")
	id = r.deleteImage("v2")
	os.Remove(filepath.Join(r.dir, "store", "volumes", "v2.json"))
	r.disabled("v2")
	if dev := r.boundTo(id); dev != "" {
		t.Errorf("after a restart: %s still bound to the deleted image", dev)
	}

	// Attached by hand, no ledger entry at all.
	r.create("v3", nil)
	if _, err := r.drv.Attach(ctx, "v3", false); err != nil {
		t.Fatal(err)
	}
	id = r.deleteImage("v3")
	r.restart()
	if dev := r.boundTo(id); dev != "" {
		t.Errorf("after a restart: %s still bound to the deleted image", dev)
	}
}
