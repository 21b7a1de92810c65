// Package keys keeps the keys of encrypted volumes, one file per volume,
// in a folder of this host's (REXRAY_KEYDIR), never in the store beside
// the blocks they open. Snapshots of encrypted volumes carry a copy of
// their volume's key under snapshots/, so that a volume made from one
// opens after its source is gone.
package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/internal/durable"
)

// Size is a key's length: 64 random bytes, as many as a LUKS2 volume key
// of aes-xts-plain64 with 512 bits.
const Size = 64

// MaxSize is the longest key read: one put in place by hand may be a
// passphrase or a key file of its own, but no larger.
const MaxSize = 4096

// ErrMissing marks a key that is not there.
var ErrMissing = errors.New("its key is missing")

// Dir is the folder of keys. It is configuration, trusted: the keys in it
// are read and written by name.
type Dir string

// Path is the file of volume's key.
func (d Dir) Path(volume string) string { return filepath.Join(string(d), volume+".key") }

// SnapshotPath is the file of snapshot's key.
func (d Dir) SnapshotPath(snapshot string) string {
	return filepath.Join(string(d), "snapshots", snapshot+".key")
}

// Read reads the key at path (Path or SnapshotPath); a key that is not
// there fails with ErrMissing, one that is empty or not a regular file
// with an error naming the path.
func Read(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no file %s", ErrMissing, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read key %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read key %s: %w", path, err)
	case len(b) == 0:
		return nil, fmt.Errorf("read key %s: it is empty", path)
	case len(b) > MaxSize:
		// Cut short, it would not be the key cryptsetup reads from the
		// same file by hand.
		return nil, fmt.Errorf("read key %s: it is longer than %d bytes", path, MaxSize)
	}
	return b, nil
}

// Exists tells whether a key is at path.
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Make puts a new random key at path unless one is there already, and
// tells whether it made it. The key is on disk, mode 0600, when Make
// returns; a crash leaves the whole key or none.
func Make(path string) (made bool, err error) {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return false, fmt.Errorf("make key %s: %w", path, err)
	}
	return put(path, key)
}

// Copy gives path the key at from: a copy of a volume opens with its
// source's key. A key already at path is kept if it is the same, and
// refused if it differs.
func Copy(from, path string) (made bool, err error) {
	key, err := Read(from)
	if err != nil {
		return false, err
	}
	made, err = put(path, key)
	if err != nil || made {
		return made, err
	}
	have, err := Read(path)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(have, key) {
		return false, fmt.Errorf("a key is at %s already and differs from %s, whose blocks the new volume copies: move it away, or create under another name", path, from)
	}
	return false, nil
}

// put links key into place at path unless a file is there: written to a
// temporary file and synced first, then linked (which, unlike a rename,
// never replaces a key), then the folder synced.
func put(path string, key []byte) (bool, error) {
	dir, name := filepath.Split(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("make key %s: %w", path, err)
	}
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("make key %s: %w", path, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(dirfd)
	tmp := "." + name + ".tmp"
	if err := durable.WriteTempAt(dirfd, tmp, key, 0o600); err != nil {
		return false, fmt.Errorf("make key %s: %w", path, err)
	}
	defer unix.Unlinkat(dirfd, tmp, 0)
	err = unix.Linkat(dirfd, tmp, dirfd, name, 0)
	if errors.Is(err, unix.EEXIST) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("make key %s: %w", path, err)
	}
	unix.Unlinkat(dirfd, tmp, 0)
	if err := durable.SyncDirAt(dirfd); err != nil {
		return true, fmt.Errorf("make key %s: %w", path, err)
	}
	return true, nil
}

// Remove deletes the key at path; one that is not there is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove key: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove key %s: %w", path, err)
	}
	return nil
}
