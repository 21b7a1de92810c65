package loopback

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// Names follows the store as another host changes it, also once it keeps
// a listing of an unchanged folder: before a second has passed since the
// folder last changed, and after.
const mib = 1 << 20

func TestNamesFollowTheStore(t *testing.T) {
	ctx := context.Background()
	store := t.TempDir()
	a, err := New(Config{VolumePath: store, Instance: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{VolumePath: store, Instance: "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := func(names ...string) {
		t.Helper()
		got, err := a.Names(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, names) {
			t.Errorf("Names = %v, want %v", got, names)
		}
	}
	create := func(name string) {
		t.Helper()
		if _, err := b.Create(ctx, name, drivers.CreateOptions{Size: mib, FSType: "ext4"}); err != nil {
			t.Fatal(err)
		}
	}
	want()
	create("v2")
	create("v1")
	want("v1", "v2")
	time.Sleep(racyMargin + 100*time.Millisecond)
	want("v1", "v2") // read a margin after the folder's times were first seen: kept
	want("v1", "v2") // from the kept listing
	create("v3")
	want("v1", "v2", "v3")
	if err := b.Remove(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	want("v2", "v3")
	time.Sleep(racyMargin + 100*time.Millisecond)
	want("v2", "v3")
	if err := b.Remove(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	want("v3")
}
