package rbd

import (
	"context"
	"errors"
	"strings"
	"syscall"
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

// A tool's exit status is the errno of what failed; the error says what
// the tool said, not "exit status 2".
func TestToolError(t *testing.T) {
	script := `echo "2026-01-01T00:00:00.000+0000 7f -1 librbd: noise" >&2; echo "rbd: error opening image nope: (2) No such file or directory" >&2; exit 2`
	_, err := tools{}.run(context.Background(), "sh", "-c", script)
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("err = %v, want ENOENT", err)
	}
	var te *toolError
	if !errors.As(err, &te) || te.msg != "rbd: error opening image nope: (2) No such file or directory" {
		t.Errorf("err = %q", err)
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
