// Package durable writes files that a crash leaves whole or not at all:
// the data goes to a temporary file, which is synced, renamed over the
// final name, and then the directory is synced, so that the rename itself
// is on disk when the call returns.
//
// The functions ending in At work in a directory the caller has already
// opened (a descriptor opened with O_PATH is enough) and take plain names
// in it, never paths: they follow no symbolic link, at the final name or at
// the temporary one, so they suit a directory whose content is input.
package durable

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// WriteAt puts data in place as name in the directory dirfd, atomically and
// durably, with exactly the permissions perm. It writes tmpName first (see
// WriteTempAt), then renames it over name (see RenameAt). On failure
// nothing is left at tmpName, and name is as it was unless the rename took
// place and only the directory's sync failed.
func WriteAt(dirfd int, name, tmpName string, data []byte, perm os.FileMode) error {
	if err := WriteTempAt(dirfd, tmpName, data, perm); err != nil {
		return err
	}
	return RenameAt(dirfd, tmpName, name)
}

// WriteTempAt writes data, synced, to a new file tmpName in the directory
// dirfd, with exactly the permissions perm; on failure it removes it.
// tmpName must be the caller's own: whatever is there is taken for what an
// earlier write left (or a link someone put in its place) and is removed,
// never written through.
func WriteTempAt(dirfd int, tmpName string, data []byte, perm os.FileMode) error {
	if err := checkName(tmpName); err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, tmpName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "remove", Path: tmpName, Err: err}
	}
	fd, err := unix.Openat(dirfd, tmpName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return &os.PathError{Op: "create", Path: tmpName, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmpName)
	err = setMode(fd, tmpName, perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmpName, 0)
		return err
	}
	return nil
}

// setMode gives the new file perm exactly: the umask may have taken bits
// from it. The common case, where it took none, makes no call, so that a
// filesystem that refuses chmod still takes files whose mode needs none.
func setMode(fd int, name string, perm os.FileMode) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if os.FileMode(st.Mode).Perm() == perm.Perm() {
		return nil
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	return nil
}

// RenameAt renames tmpName over name in the directory dirfd and syncs the
// directory. A symbolic link at name is replaced, not followed. On failure
// it removes tmpName.
func RenameAt(dirfd int, tmpName, name string) error {
	if err := checkName(name); err != nil {
		unix.Unlinkat(dirfd, tmpName, 0)
		return err
	}
	if err := unix.Renameat(dirfd, tmpName, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmpName, 0)
		return &os.LinkError{Op: "rename", Old: tmpName, New: name, Err: err}
	}
	return SyncDirAt(dirfd)
}

// SyncDirAt syncs the directory dirfd, so that the names created, renamed
// or removed in it are on disk. dirfd may be an O_PATH descriptor, which
// cannot be synced itself: the directory is opened again for reading.
func SyncDirAt(dirfd int) error {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: ".", Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "sync", Path: ".", Err: err}
	}
	return nil
}

// SyncDir syncs the directory at path, which is trusted (it is followed if
// it is a symbolic link).
func SyncDir(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "sync", Path: path, Err: err}
	}
	return nil
}

// checkName refuses a name that is not one entry of the directory: a path
// would be resolved through its folders, following any link among them.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("durable: %q is not a file name", name)
	}
	return nil
}
