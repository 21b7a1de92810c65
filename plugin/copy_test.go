//go:build integration

package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
	"golang.org/x/sys/unix"
)

// A copy of a volume in use is frozen for the copy: the copy holds what was
// written, and the source goes on taking writes afterwards.
func TestCopyOfMountedVolume(t *testing.T) {
	r := newRig(t)
	r.create("src", map[string]string{"size": "32MiB", "iops": "5"})
	path := r.mount("src", "a")
	if err := os.WriteFile(filepath.Join(path, "f"), []byte("before the copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.create("cp", map[string]string{"volumeName": "src"})
	if err := os.WriteFile(filepath.Join(path, "g"), []byte("after"), 0o600); err != nil {
		t.Fatalf("source not writable after the copy: %v", err)
	}
	got, err := r.p.Get(&volume.GetRequest{Name: "cp"})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Volume.Status; s["size"] != 0.03125 || s["fields"].(map[string]string)["origin"] != "src" {
		t.Errorf("copy's status %v: want the source's size and origin src", s)
	}
	cpPath := r.mount("cp", "b")
	if b, err := os.ReadFile(filepath.Join(cpPath, "f")); string(b) != "before the copy" {
		t.Errorf("copy holds %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(cpPath, "g")); !os.IsNotExist(err) {
		t.Errorf("copy holds a file written after it: %v", err)
	}
	r.unmount("cp", "b")
	r.unmount("src", "a")
	// Docker re-sends Create: the same source is the same volume.
	r.create("cp", map[string]string{"volumeID": "src"})
	err = r.p.Create(&volume.CreateRequest{Name: "cp", Options: map[string]string{"volumeName": "other"}})
	if err == nil || !strings.Contains(err.Error(), "volumename is src, not other") {
		t.Errorf("Create of the copy from another source = %v", err)
	}
}

func TestCopyRefusals(t *testing.T) {
	r := newRig(t)
	r.create("src", map[string]string{"size": "32MiB"})
	cases := []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"volumeName": "missing"}, "source volume missing: volume not found"},
		{map[string]string{"volumeName": "src", "size": "16MiB"}, "a copy cannot shrink"},
		{map[string]string{"volumeName": "src", "newfstype": "xfs", "size": "512MiB"}, "keeps its filesystem (ext4)"},
		{map[string]string{"volumeName": "../etc"}, "invalid volume name"},
	}
	for _, tc := range cases {
		err := r.p.Create(&volume.CreateRequest{Name: "cp", Options: tc.opts})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create %v = %v, want %q", tc.opts, err, tc.want)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(r.dir, "store", "volumes"))
	if len(entries) != 2 {
		t.Errorf("store after refused copies: %d files, want src's two", len(entries))
	}
}

// A copy that does not fit in the store fails whole.
func TestCopyOnFullStore(t *testing.T) {
	r := newRig(t)
	store := r.smallStore("24m")
	r.create("src", map[string]string{"size": "16MiB"})
	path := r.mount("src", "a")
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = byte(i)
	}
	os.WriteFile(filepath.Join(path, "big"), big, 0o600)
	r.unmount("src", "a")                            // the image now holds over 6 MiB of data
	fillTo(t, filepath.Join(store, "filler"), 3<<20) // room for half a copy

	err := r.p.Create(&volume.CreateRequest{Name: "cp", Options: map[string]string{"volumeName": "src"}})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("copy into a full store = %v", err)
	}
	for _, f := range []string{"cp.img", "cp.json", ".cp.json.tmp"} {
		if _, err := os.Stat(filepath.Join(store, "volumes", f)); !os.IsNotExist(err) {
			t.Errorf("%s left after the failed copy: %v", f, err)
		}
	}
	os.Remove(filepath.Join(store, "filler"))
	path = r.mount("src", "b")
	if b, err := os.ReadFile(filepath.Join(path, "big")); err != nil || len(b) != len(big) {
		t.Errorf("source after the failed copy: %d bytes, %v", len(b), err)
	}
	r.unmount("src", "b")
}

// fillTo leaves about free bytes free on path's filesystem.
func fillTo(t *testing.T, path string, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		return
	}
	if err := os.WriteFile(path, make([]byte, avail-free), 0o600); err != nil {
		t.Fatal(err)
	}
}
