package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func newDir(t *testing.T) Dir {
	t.Helper()
	return Dir(filepath.Join(t.TempDir(), "keys"))
}

// files lists what is in folder, names only.
func files(t *testing.T, folder string) []string {
	t.Helper()
	ents, err := os.ReadDir(folder)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestMakeWritesARandomKeyReadableByOwnerOnly(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	d := newDir(t)
	made, err := Make(d.Path("v1"))
	if err != nil || !made {
		t.Fatalf("Make = %t, %v; want made", made, err)
	}
	if _, err := Make(d.Path("v2")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.Path("v1"), d.Path("v2")} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0o600 || st.Size() != Size {
			t.Errorf("%s: mode %v, %d bytes; want -rw------- and %d bytes, whatever the umask", p, st.Mode(), st.Size(), Size)
		}
	}
	st, err := os.Stat(string(d))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the key folder: %v, %v; want made with mode 0700", st.Mode(), err)
	}
	k1, _ := Read(d.Path("v1"))
	k2, _ := Read(d.Path("v2"))
	if len(k1) != Size || bytes.Equal(k1, k2) {
		t.Errorf("two keys: %x and %x; want %d random bytes each", k1, k2, Size)
	}
	if names := files(t, string(d)); strings.Join(names, " ") != "v1.key v2.key" {
		t.Errorf("the folder holds %v; want the two keys and no temporary file", names)
	}
}

func TestMakeNeverReplacesAKey(t *testing.T) {
	d := newDir(t)
	path := d.Path("v")
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		t.Fatal(err)
	}
	mine := []byte("a key the operator chose\n")
	if err := os.WriteFile(path, mine, 0o600); err != nil {
		t.Fatal(err)
	}
	made, err := Make(path)
	if err != nil || made {
		t.Fatalf("Make over a key = %t, %v; want not made, no error", made, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, mine) {
		t.Errorf("the key is now %q; want %q kept", got, mine)
	}
	if names := files(t, string(d)); len(names) != 1 {
		t.Errorf("the folder holds %v; want the key only", names)
	}
}

// A temporary file a crash left does not stop the next Make.
func TestMakeOverALeftoverTemporaryFile(t *testing.T) {
	d := newDir(t)
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(string(d), ".v.key.tmp")
	if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if made, err := Make(d.Path("v")); err != nil || !made {
		t.Fatalf("Make = %t, %v", made, err)
	}
	if k, err := Read(d.Path("v")); err != nil || len(k) != Size {
		t.Errorf("Read = %d bytes, %v; want a whole new key", len(k), err)
	}
	if names := files(t, string(d)); strings.Join(names, " ") != "v.key" {
		t.Errorf("the folder holds %v", names)
	}
}

func TestReadRefusesWhatIsNoKey(t *testing.T) {
	d := newDir(t)
	if err := os.MkdirAll(filepath.Join(string(d), "dir.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(outside, []byte("not this one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, d.Path("link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Path("empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Path("long"), make([]byte, MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"missing": "no file",
		"dir":     "not a regular file",
		"link":    "link.key",
		"empty":   "it is empty",
		"long":    "longer than 4096 bytes",
	} {
		k, err := Read(d.Path(name))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), d.Path(name)) {
			t.Errorf("Read(%s) = %q, %v; want an error naming the path and %q", name, k, err, want)
		}
		if got := errors.Is(err, ErrMissing); got != (name == "missing") {
			t.Errorf("Read(%s): errors.Is(ErrMissing) = %t", name, got)
		}
	}
	if err := os.WriteFile(d.Path("max"), bytes.Repeat([]byte{'k'}, MaxSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := Read(d.Path("max")); err != nil || len(k) != MaxSize {
		t.Errorf("Read of a %d-byte key = %d bytes, %v", MaxSize, len(k), err)
	}
}

func TestCopyGivesTheSameKeyAndRefusesAnother(t *testing.T) {
	d := newDir(t)
	if _, err := Make(d.Path("src")); err != nil {
		t.Fatal(err)
	}
	src, _ := Read(d.Path("src"))
	made, err := Copy(d.Path("src"), d.SnapshotPath("s1"))
	if err != nil || !made {
		t.Fatalf("Copy = %t, %v", made, err)
	}
	if got, _ := Read(d.SnapshotPath("s1")); !bytes.Equal(got, src) {
		t.Errorf("the copy is %x; want %x", got, src)
	}
	if st, err := os.Lstat(d.SnapshotPath("s1")); err != nil || st.Mode() != 0o600 {
		t.Errorf("the copy's mode: %v, %v", st.Mode(), err)
	}
	// Again (Docker repeats a create): the same key is there already.
	if made, err := Copy(d.Path("src"), d.SnapshotPath("s1")); err != nil || made {
		t.Errorf("Copy again = %t, %v; want not made, no error", made, err)
	}
	if _, err := Make(d.Path("other")); err != nil {
		t.Fatal(err)
	}
	other, _ := Read(d.Path("other"))
	_, err = Copy(d.Path("src"), d.Path("other"))
	if err == nil || !strings.Contains(err.Error(), d.Path("other")) || !strings.Contains(err.Error(), d.Path("src")) {
		t.Errorf("Copy over another key = %v; want an error naming both", err)
	}
	if got, _ := Read(d.Path("other")); !bytes.Equal(got, other) {
		t.Error("Copy replaced another key")
	}
	if _, err := Copy(d.Path("gone"), d.Path("new")); !errors.Is(err, ErrMissing) {
		t.Errorf("Copy of a missing key = %v; want ErrMissing", err)
	}
	if _, err := os.Lstat(d.Path("new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Copy of a missing key left %s: %v", d.Path("new"), err)
	}
}

func TestRemove(t *testing.T) {
	d := newDir(t)
	if _, err := Make(d.Path("v")); err != nil {
		t.Fatal(err)
	}
	if err := Remove(d.Path("v")); err != nil {
		t.Fatal(err)
	}
	if Exists(d.Path("v")) {
		t.Error("the key is still there")
	}
	if err := Remove(d.Path("v")); err != nil {
		t.Errorf("Remove of a key not there = %v; want nil", err)
	}
	if err := Remove(Dir(filepath.Join(t.TempDir(), "none")).Path("v")); err != nil {
		t.Errorf("Remove in a folder not there = %v; want nil", err)
	}
}
