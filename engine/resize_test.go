package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
)

// TestResizeGrowsTheBlocksThenTheMountedFilesystem: the platform grows
// the volume, a filesystem mounted here grows with it, Status follows on
// every host; shrinking is refused and changes nothing.
func TestResizeGrowsTheBlocksThenTheMountedFilesystem(t *testing.T) {
	store := memdriver.NewStore()
	a := newHost(t, store, "a", newFakeOS(), nil)
	b := newHost(t, store, "b", newFakeOS(), nil)
	a.create("v", map[string]string{"size": "64MiB"})
	a.mount("v", docker("c1"))
	st, err := a.e.Resize(context.Background(), "v", 128<<20)
	if err != nil || st.Size != 128<<20 {
		t.Fatalf("Resize = %d bytes, %v; want 128 MiB", st.Size, err)
	}
	if !slices.Equal(a.os.grown, []string{"v"}) {
		t.Errorf("filesystems grown %v, want v's", a.os.grown)
	}
	if st, err := b.e.Get(context.Background(), "v"); err != nil || st.Size != 128<<20 {
		t.Errorf("another host's Get = %d bytes, %v; want 128 MiB", st.Size, err)
	}
	_, err = b.e.Resize(context.Background(), "v", 64<<20)
	if !errors.Is(err, drivers.ErrInvalid) || !strings.Contains(err.Error(), "shrinking is refused") {
		t.Errorf("shrink: %v, want refused", err)
	}
	if st, _ := a.e.Get(context.Background(), "v"); st.Size != 128<<20 {
		t.Errorf("after a refused shrink: %d bytes", st.Size)
	}
	// Not mounted on b: only the blocks grow there.
	if _, err := b.e.Resize(context.Background(), "v", 256<<20); err != nil || len(b.os.grown) != 0 {
		t.Errorf("resize from a host that has it unmounted: %v, grown there %v", err, b.os.grown)
	}
}
