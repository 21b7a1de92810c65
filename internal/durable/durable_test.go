package durable

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// openDir opens a new directory the way a caller that distrusts its
// content does: O_PATH, which cannot itself be synced.
func openDir(t *testing.T) (string, int) {
	t.Helper()
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

// bait is a file outside the directory, with data a followed link would
// overwrite.
func bait(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bait")
	data := []byte("not yours")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func wantContent(t *testing.T, path string, want []byte) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() {
		t.Fatalf("%s is %v, want a regular file", path, st.Mode())
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s holds %q (%v), want %q", path, got, err, want)
	}
}

func wantGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", path, err)
	}
}

func TestWriteAtPutsTheDataInPlace(t *testing.T) {
	dir, fd := openDir(t)
	for _, data := range []string{"first", "second, longer than the first"} {
		if err := WriteAt(fd, "rec.json", ".rec.tmp", []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		wantContent(t, filepath.Join(dir, "rec.json"), []byte(data))
		wantGone(t, filepath.Join(dir, ".rec.tmp"))
	}
}

func TestWriteAtReplacesALeftoverTemp(t *testing.T) {
	dir, fd := openDir(t)
	if err := os.WriteFile(filepath.Join(dir, ".rec.tmp"), []byte("a crashed write's half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteAt(fd, "rec.json", ".rec.tmp", []byte("whole"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantContent(t, filepath.Join(dir, "rec.json"), []byte("whole"))
	wantGone(t, filepath.Join(dir, ".rec.tmp"))
}

func TestWriteAtGivesTheModeAsked(t *testing.T) {
	dir, fd := openDir(t)
	// 0o666 and 0o777 have bits a usual umask (022) takes away; the file
	// already there has another mode, which the new one does not inherit.
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []os.FileMode{0o600, 0o640, 0o666, 0o777, 0o400} {
		if err := WriteAt(fd, "f", ".f.tmp", []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("written with %v, the file has %v", perm, st.Mode().Perm())
		}
	}
}

// A link at the final name is replaced by the file; what it points at is
// not written.
func TestWriteAtDoesNotFollowALinkAtTheName(t *testing.T) {
	dir, fd := openDir(t)
	target, data := bait(t)
	if err := os.Symlink(target, filepath.Join(dir, "rec.json")); err != nil {
		t.Fatal(err)
	}
	if err := WriteAt(fd, "rec.json", ".rec.tmp", []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantContent(t, filepath.Join(dir, "rec.json"), []byte("mine"))
	wantContent(t, target, data)
}

// A link at the temporary name is removed, never written through.
func TestWriteAtDoesNotFollowALinkAtTheTemp(t *testing.T) {
	dir, fd := openDir(t)
	target, data := bait(t)
	if err := os.Symlink(target, filepath.Join(dir, ".rec.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := WriteAt(fd, "rec.json", ".rec.tmp", []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantContent(t, filepath.Join(dir, "rec.json"), []byte("mine"))
	wantGone(t, filepath.Join(dir, ".rec.tmp"))
	wantContent(t, target, data)
}

// A write that fails leaves no temp behind, and what was at the name as
// it was.
func TestWriteAtFailedLeavesNoTemp(t *testing.T) {
	dir, fd := openDir(t)
	// A directory, with a file in it, where the record belongs: the
	// rename cannot replace it.
	in := filepath.Join(dir, "rec.json", "inside")
	if err := os.MkdirAll(filepath.Dir(in), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteAt(fd, "rec.json", ".rec.tmp", []byte("mine"), 0o600); err == nil {
		t.Fatal("WriteAt over a directory succeeded")
	}
	wantGone(t, filepath.Join(dir, ".rec.tmp"))
	wantContent(t, in, []byte("kept"))
}

// Names are entries of the directory, never paths resolved through other
// folders (or the links among them).
func TestWriteAtRefusesPaths(t *testing.T) {
	dir, fd := openDir(t)
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	for _, names := range [][2]string{{"sub/rec.json", ".rec.tmp"}, {"rec.json", "sub/.rec.tmp"}, {"..", ".rec.tmp"}, {"rec.json", ""}} {
		if err := WriteAt(fd, names[0], names[1], []byte("mine"), 0o600); err == nil {
			t.Errorf("WriteAt(%q, %q) succeeded", names[0], names[1])
		}
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("files were written through the link: %v", entries)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %v, want the link alone", entries)
	}
}

func TestSyncDir(t *testing.T) {
	dir, fd := openDir(t)
	if err := SyncDirAt(fd); err != nil {
		t.Errorf("SyncDirAt of an O_PATH descriptor: %v", err)
	}
	if err := SyncDir(dir); err != nil {
		t.Errorf("SyncDir(%s): %v", dir, err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SyncDir of a missing folder = %v, want os.ErrNotExist", err)
	}
}
