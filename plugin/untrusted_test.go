//go:build integration

package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
)

// A volume whose image was replaced by a link to a device or file with no
// filesystem is never formatted through it: the mount is refused naming
// the link, and the file is as it was.
func TestMountRefusesALinkedImage(t *testing.T) {
	r := newRig(t)
	r.create("v1", map[string]string{"size": "16MiB"})
	raw := bytes.Repeat([]byte{0xA5}, 16<<20) // no filesystem, as a raw device
	target := filepath.Join(t.TempDir(), "raw")
	if err := os.WriteFile(target, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(r.dir, "store", "volumes", "v1.img")
	os.Remove(img)
	if err := os.Symlink(target, img); err != nil {
		t.Fatal(err)
	}
	_, err := r.p.Mount(&volume.MountRequest{Name: "v1", ID: "c1"})
	if err == nil || !strings.Contains(err.Error(), img) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Mount = %v, want it refused naming %s as a symbolic link", err, img)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, raw) {
		t.Errorf("the link's target was written to")
	}
	if mounted, _ := r.mnt.IsMounted("v1"); mounted {
		t.Errorf("v1 is mounted")
	}
}
