package loopback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/rexray/rexray/drivers"
)

// TestOvercommit: a volume beyond the store's free space, counting what
// the other sparse images may still write, is refused with the figures
// without Overcommit and leaves no file; with it, it is made and logged.
func TestOvercommit(t *testing.T) {
	store := t.TempDir()
	log, hook := test.NewNullLogger()
	d, err := New(Config{VolumePath: store, Instance: "h1", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	free, err := d.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Half the room, twice: the second does not fit beside the first's
	// hole.
	half := drivers.CreateOptions{Size: free/2 + 1<<20, FSType: "ext4"}
	if _, err := d.Create(ctx, "a", half); err != nil {
		t.Fatal(err)
	}
	_, err = d.Create(ctx, "b", half)
	if !errors.Is(err, drivers.ErrNoRoom) || !strings.Contains(err.Error(), "LOOPBACK_OVERCOMMIT=false refuses") || !strings.Contains(err.Error(), "free") {
		t.Errorf("create beyond the room: %v, want ErrNoRoom with the figures", err)
	}
	if m, _ := filepath.Glob(filepath.Join(store, "volumes", "b*")); len(m) != 0 {
		t.Errorf("a refused create left %v", m)
	}

	d.cfg.Overcommit = true
	if _, err := d.Create(ctx, "b", half); err != nil {
		t.Fatalf("create beyond the room with overcommit: %v", err)
	}
	e := hook.LastEntry()
	if e == nil || e.Level != logrus.WarnLevel || !strings.Contains(e.Message, "overcommitted") || e.Data["volume"] != "b" {
		t.Errorf("log of an overcommitted create: %v, want a warning on volume b", e)
	}
	if st, err := os.Stat(d.imagePath("b")); err != nil || st.Size() != half.Size {
		t.Errorf("image of b: %v, %v", st, err)
	}
}
