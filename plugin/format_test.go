//go:build integration

package plugin

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
)

// image is the path of a loopback volume's image in the rig's store.
func (r *rig) image(name string) string {
	return filepath.Join(r.dir, "store", "volumes", name+".img")
}

// zeroAt overwrites n bytes of path at off with zeros.
func zeroAt(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

// mountFails mounts name and wants a refusal that names what a user needs.
func (r *rig) mountFails(name string, want ...string) {
	r.t.Helper()
	_, err := r.p.Mount(&volume.MountRequest{Name: name, ID: "again"})
	if err == nil {
		r.t.Fatalf("Mount of %s succeeded, want it refused", name)
	}
	r.t.Logf("Mount of %s: %v", name, err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			r.t.Errorf("Mount of %s = %v; does not say %q", name, err, w)
		}
	}
	if mounted, _ := r.mnt.IsMounted(name); mounted || r.held(name) {
		r.t.Errorf("%s is mounted after the refused Mount", name)
	}
}

// A volume whose primary superblock was damaged after its first mount is
// not formatted again: the mount fails saying how to check and how to
// start over, and the data is recovered from a backup superblock.
func TestDamagedFilesystemIsNeverFormattedAgain(t *testing.T) {
	r := newRig(t)
	r.create("v1", map[string]string{"size": "64MiB"})
	path := r.mount("v1", "c1")
	if err := os.WriteFile(filepath.Join(path, "keep"), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.unmount("v1", "c1")
	if m := r.meta("v1"); m["formatted"] == nil {
		t.Errorf("after the first mount, the metadata is %v; want its format recorded", m)
	}

	// ext4's primary superblock is the 1 KiB at byte 1024.
	zeroAt(t, r.image("v1"), 1024, 1024)
	r.mountFails("v1", "volume v1", "/dev/loop", "holds no filesystem that can be recognised",
		"is not formatted again", "e2fsck", r.image("v1"), "docker volume rm v1")
	// A restarted plugin, or another host, sees the same record.
	r.restart()
	r.mountFails("v1", "volume v1", "e2fsck")

	// The repair the error points at.
	out, err := exec.Command("mke2fs", "-n", "-F", r.image("v1")).CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs -n: %v: %s", err, out)
	}
	backup := regexp.MustCompile(`Superblock backups stored on blocks:\s*(\d+)`).FindSubmatch(out)
	if backup == nil {
		t.Fatalf("mke2fs -n lists no backup superblock: %s", out)
	}
	out, err = exec.Command("e2fsck", "-fy", "-b", string(backup[1]), r.image("v1")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("e2fsck -b %s: %v: %s", backup[1], err, out)
	}
	path = r.mount("v1", "c2")
	if b, err := os.ReadFile(filepath.Join(path, "keep")); err != nil || string(b) != "precious" {
		t.Errorf("after e2fsck -b %s: %q, %v; want the file back", backup[1], b, err)
	}
	r.unmount("v1", "c2")
}

// meta is name's metadata in the store, as a user reads it.
func (r *rig) meta(name string) map[string]any {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "store", "volumes", name+".json"))
	if err != nil {
		r.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		r.t.Fatal(err)
	}
	return m
}

// unrecord makes name's metadata what a volume created before the format
// record existed has: neither field.
func (r *rig) unrecord(name string) {
	r.t.Helper()
	meta := filepath.Join(r.dir, "store", "volumes", name+".json")
	m := r.meta(name)
	delete(m, "formatted")
	delete(m, "unformatted")
	b, _ := json.Marshal(m)
	if err := os.WriteFile(meta, b, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// A volume made before the format record existed: blank, it is formatted
// at its first mount; with a filesystem, that is recorded; with data and
// no filesystem that can be recognised, its mount is refused.
func TestVolumeWithoutFormatRecord(t *testing.T) {
	r := newRig(t)
	r.create("new", map[string]string{"size": "16MiB"})
	r.unrecord("new")
	r.mount("new", "c1")
	r.unmount("new", "c1")

	r.create("used", map[string]string{"size": "16MiB"})
	path := r.mount("used", "c1")
	os.WriteFile(filepath.Join(path, "keep"), []byte("precious"), 0o600)
	r.unmount("used", "c1")
	r.unrecord("used")
	r.mount("used", "c2")
	r.unmount("used", "c2")
	if m := r.meta("used"); m["formatted"] == nil {
		t.Errorf("a filesystem found on a volume without a record: metadata %v; want it recorded", m)
	}

	r.create("odd", map[string]string{"size": "16MiB"})
	path = r.mount("odd", "c1")
	os.WriteFile(filepath.Join(path, "keep"), []byte("precious"), 0o600)
	r.unmount("odd", "c1")
	r.unrecord("odd")
	zeroAt(t, r.image("odd"), 1024, 1024)
	r.restart() // the catalogue too forgets the record
	r.mountFails("odd", "volume odd", "no record of a first format", "e2fsck", "docker volume rm odd")
}

// The record this host catalogued is checked against the store before a
// volume is refused: another host may have removed the volume and made a
// new one of that name, which its first mount here formats.
func TestNameMadeAgainElsewhereIsFormatted(t *testing.T) {
	r := newRig(t)
	r.create("v1", map[string]string{"size": "16MiB"})
	path := r.mount("v1", "c1")
	os.WriteFile(filepath.Join(path, "old"), []byte("old"), 0o600)
	r.unmount("v1", "c1")

	other, err := loopback.New(loopback.Config{VolumePath: filepath.Join(r.dir, "store"), Instance: "h2", Overcommit: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := other.Remove(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, "v1", drivers.CreateOptions{Size: 16 << 20, FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}
	path = r.mount("v1", "c2")
	if _, err := os.Stat(filepath.Join(path, "old")); err == nil {
		t.Errorf("the new v1 holds the old one's file")
	}
	r.unmount("v1", "c2")
}
