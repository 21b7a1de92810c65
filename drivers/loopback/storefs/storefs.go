// Package storefs opens the files of a store that others may write (the
// loopback store, shared by hosts): beneath its root, never through a
// symbolic link, and only regular files.
package storefs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers/loopdev"
)

// The store is input. Another host, or anyone who can write the share,
// may put a symbolic link, a device or a FIFO where an image or a record
// belongs; followed, it would attach and format whatever it points at.
// The store's root is configuration (an administrator may well have made it
// a symbolic link): files are opened beneath it without following a
// symbolic link in any component below it, and only regular files are
// used.

// UntrustedError is the answer for a path in the store that is not what
// the store holds there: a regular file (or, for a folder, a directory).
type UntrustedError struct {
	Path string
	What string // "a symbolic link", "a block device", ...
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file of the store: refused, nothing was opened through it; remove it, or put the volume's own file there", e.Path, e.What)
}

// OpenIn opens path, which lies beneath root, with flag (O_CREAT and O_EXCL
// included); it must be a regular file. A missing file is os.ErrNotExist.
func OpenIn(root, path string, flag int, perm uint32) (*os.File, error) {
	dir, err := OpenDirIn(root, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	// O_NONBLOCK: opening a FIFO for reading would wait for a writer. It
	// means nothing for a regular file, and is cleared below.
	fd, err := unix.Openat(dir, filepath.Base(path), flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, perm)
	if errors.Is(err, unix.ELOOP) {
		return nil, &UntrustedError{Path: path, What: "a symbolic link"}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &UntrustedError{Path: path, What: kind(st.Mode)}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// CreateIn makes path anew, exclusively: whatever was there (a leftover of
// this host's, or a link someone put in its place) is removed first, so
// the file written is always a new one.
func CreateIn(root, path string, flag int) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return OpenIn(root, path, flag|os.O_CREATE|os.O_EXCL, 0o600)
}

// maxRecord bounds a metadata or lease file: they are a few hundred bytes.
const maxRecord = 1 << 20

// ReadIn reads the regular file path beneath root.
func ReadIn(root, path string) ([]byte, error) {
	f, err := OpenIn(root, path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%s is more than %d bytes: not a record of the store", path, maxRecord)
	}
	return b, nil
}

// IDIn is the loop device FileID of the regular file path beneath root,
// found without opening it.
func IDIn(root, path string) (loopdev.FileID, error) {
	dir, err := OpenDirIn(root, filepath.Dir(path))
	if err != nil {
		return loopdev.FileID{}, err
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstatat(dir, filepath.Base(path), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return loopdev.FileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return loopdev.FileID{}, &UntrustedError{Path: path, What: kind(st.Mode)}
	}
	return loopdev.IDOfStat(&st), nil
}

// OpenDirIn opens the folder dir, root itself or beneath it, following no
// symbolic link below root.
func OpenDirIn(root, dir string) (int, error) {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return -1, fmt.Errorf("%s is not inside the store %s", dir, root)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	if rel == "." {
		return fd, nil
	}
	at := root
	for _, part := range strings.Split(rel, "/") {
		at = filepath.Join(at, part)
		next, err := unix.Openat(fd, part, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			var st unix.Stat_t
			if errors.Is(err, unix.ENOTDIR) && unix.Fstatat(fd, part, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				err = &UntrustedError{Path: at, What: kind(st.Mode) + " where a folder belongs"}
			} else {
				err = &os.PathError{Op: "open", Path: at, Err: err}
			}
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
	}
	return fd, nil
}

// kind names a file's type for an error.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	}
	return "a file of an unknown type"
}
