package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMountIDs(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for _, step := range []struct {
		id        string
		wantCount int
		wantAdded bool
	}{{"a", 1, true}, {"b", 2, true}, {"a", 2, false}} {
		n, added, err := s.AddMount("v", step.id)
		if err != nil || n != step.wantCount || added != step.wantAdded {
			t.Fatalf("AddMount(%s) = %d, %v, %v; want %d, %v", step.id, n, added, err, step.wantCount, step.wantAdded)
		}
	}
	// The counts survive a restart: that is the ledger's purpose.
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if ids, _ := s.Mounts("v"); strings.Join(ids, ",") != "a,b" {
		t.Fatalf("after reopen: ids %v, want a,b", ids)
	}
	if left, removed, _ := s.RemoveMount("v", "zzz"); left != 2 || removed {
		t.Errorf("RemoveMount(unknown) = %d, %v; want 2, false", left, removed)
	}
	if left, removed, _ := s.RemoveMount("v", "a"); left != 1 || !removed {
		t.Errorf("RemoveMount(a) = %d, %v; want 1, true", left, removed)
	}
	if left, removed, _ := s.RemoveMount("v", "b"); left != 0 || !removed {
		t.Errorf("RemoveMount(b) = %d, %v; want 0, true", left, removed)
	}
	if m, _ := s.MountedVolumes(); len(m) != 0 {
		t.Errorf("MountedVolumes after the last unmount: %v", m)
	}
}

func TestCatalogue(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	v := drivers.Volume{Name: "v1", Size: 1 << 30, Meta: drivers.Meta{FSType: "ext4", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	if err := s.PutVolume(v); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Volume("v1")
	if err != nil || !ok || got.Size != v.Size || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("Volume(v1) = %+v, %v, %v", got, ok, err)
	}
	if err := s.ReplaceVolumes([]drivers.Volume{{Name: "v2"}}); err != nil {
		t.Fatal(err)
	}
	names, _ := s.VolumeNames()
	if len(names) != 1 || names[0] != "v2" {
		t.Fatalf("after replace: %v", names)
	}
	s.DeleteVolume("v2")
	if _, ok, _ := s.Volume("v2"); ok {
		t.Error("v2 still catalogued after delete")
	}
}

// A second process pointed at a ledger in use must fail fast and say why.
func TestOpenInUseFailsFast(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	start := time.Now()
	_, err := Open(dir, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "in use by another rexray") {
		t.Fatalf("second Open = %v, want an in-use error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %s", d)
	}
}

func TestLedgerIsNotWorldReadable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	defer s.Close()
	for _, p := range []string{dir, filepath.Join(dir, FileName)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o: group or others can get in", p, perm)
		}
	}
}
