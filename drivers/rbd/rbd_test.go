package rbd

import (
	"strings"
	"testing"

	"github.com/rexray/rexray/drivers"
)

func TestAutoMethod(t *testing.T) {
	cases := []struct {
		have []string
		want string
	}{
		{[]string{"/sys/bus/rbd", "/dev/nbd0"}, "krbd"},
		{[]string{"/sys/module/nbd"}, "nbd"},
		{[]string{"/dev/nbd0"}, "nbd"},
		{nil, "fuse"},
	}
	for _, c := range cases {
		got := autoMethod(func(p string) bool {
			for _, h := range c.have {
				if h == p {
					return true
				}
			}
			return false
		})
		if got != c.want {
			t.Errorf("with %v: %s, want %s", c.have, got, c.want)
		}
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	if _, err := New(Config{DefaultPool: "rbd", Attach: "iscsi"}, drivers.Settings{InstanceID: "h1"}); err == nil || !strings.Contains(err.Error(), "RBD_ATTACH") {
		t.Errorf("bad RBD_ATTACH: %v", err)
	}
	if _, err := New(Config{DefaultPool: "../x", Attach: "fuse"}, drivers.Settings{InstanceID: "h1"}); err == nil || !strings.Contains(err.Error(), "RBD_DEFAULTPOOL") {
		t.Errorf("bad RBD_DEFAULTPOOL: %v", err)
	}
}

// The image of a removed volume with snapshots is no volume (its name is
// not one), and its snapshots go on naming the volume.
func TestRemovedImage(t *testing.T) {
	for _, name := range []string{"db", "db.1-x", "removed.x"} {
		img := removedImage(name)
		if drivers.ValidateName(img) == nil {
			t.Errorf("removedImage(%s) = %s, a volume's name", name, img)
		}
		if got := volumeOf(img); got != name {
			t.Errorf("volumeOf(%s) = %s, want %s", img, got, name)
		}
		if got := volumeOf(name); got != name {
			t.Errorf("volumeOf(%s) = %s, want it unchanged", name, got)
		}
	}
}
