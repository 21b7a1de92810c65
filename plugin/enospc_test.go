//go:build integration

package plugin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
	"golang.org/x/sys/unix"
)

// A store that is full: Create fails with a clear error and leaves nothing,
// and the volumes already there are untouched.
func TestStoreFull(t *testing.T) {
	r := newRig(t)
	store := r.smallStore("4m")

	r.create("kept", map[string]string{"size": "16MiB"})
	meta := filepath.Join(store, "volumes", "kept.json")
	before, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}

	fill(t, filepath.Join(store, "filler"))
	err = r.p.Create(&volume.CreateRequest{Name: "new", Options: map[string]string{"size": "16MiB"}})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Create on a full store = %v, want a no-space error", err)
	}
	if !strings.Contains(err.Error(), "create volume new") {
		t.Errorf("error %q does not name the volume", err)
	}
	entries, _ := os.ReadDir(filepath.Join(store, "volumes"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "kept.") {
			t.Errorf("left in the store after a failed Create: %s", e.Name())
		}
	}
	if _, err := r.p.Get(&volume.GetRequest{Name: "new"}); err == nil {
		t.Error("a volume that failed to create is known to Get")
	}
	after, err := os.ReadFile(meta)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("existing volume's metadata changed: %v", err)
	}
	if _, err := r.p.Get(&volume.GetRequest{Name: "kept"}); err != nil {
		t.Errorf("existing volume: %v", err)
	}
}

// smallStore puts the rig's store on a tmpfs of size of its own, so that
// it can be filled, and returns the store's folder.
func (r *rig) smallStore(size string) string {
	r.t.Helper()
	store := filepath.Join(r.dir, "store")
	if err := unix.Mount("tmpfs", store, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { unix.Unmount(store, unix.MNT_DETACH) })
	if err := os.MkdirAll(filepath.Join(store, "volumes"), 0o700); err != nil {
		r.t.Fatal(err)
	}
	return store
}

// fill writes to path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
