package mount

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// bindOptions are the mount options a bind takes, and their flags: those
// that limit what is done through the bind, never what the filesystem is.
var bindOptions = map[string]uintptr{
	"ro":         unix.MS_RDONLY,
	"nosuid":     unix.MS_NOSUID,
	"nodev":      unix.MS_NODEV,
	"noexec":     unix.MS_NOEXEC,
	"noatime":    unix.MS_NOATIME,
	"nodiratime": unix.MS_NODIRATIME,
	"relatime":   unix.MS_RELATIME,
}

// CheckBindOptions refuses an option Bind does not take, naming those it
// takes.
func CheckBindOptions(opts []string) error {
	for _, o := range opts {
		if _, ok := bindOptions[o]; !ok {
			return fmt.Errorf("mount option %q cannot apply to a bind: accepted are %s", o, strings.Join(slices.Sorted(maps.Keys(bindOptions)), ", "))
		}
	}
	return nil
}

// Bind binds source, a directory or a block device, at target, which it
// makes first: a directory, or an empty file for a device. opts are
// options CheckBindOptions accepts ("ro" makes the bind read-only). What
// Bind made is gone again when it fails.
func Bind(source, target string, opts []string) error {
	if err := CheckBindOptions(opts); err != nil {
		return err
	}
	st, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("bind %s: %w", source, err)
	}
	if st.IsDir() {
		err = os.Mkdir(target, 0o750)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			err = f.Close()
		}
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("bind %s at %s: %w", source, target, err)
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return fmt.Errorf("bind %s at %s: %w", source, target, err)
	}
	var flags uintptr
	for _, o := range opts {
		flags |= bindOptions[o]
	}
	if flags == 0 {
		return nil
	}
	// A bind takes its own flags only when remounted.
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		unix.Unmount(target, 0)
		os.Remove(target)
		return fmt.Errorf("bind %s at %s with %s: %w", source, target, strings.Join(opts, ","), err)
	}
	return nil
}

// Unbind unmounts what is mounted at target, and removes target. Neither
// a mount nor target being there is an error.
func Unbind(target string) error {
	mounted, err := IsMountPoint(target)
	if err != nil {
		return err
	}
	if mounted {
		if err := unix.Unmount(target, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// IsMountPoint tells whether something is mounted at path; a path that
// does not exist has nothing mounted.
func IsMountPoint(path string) (bool, error) {
	ok, err := mountinfo.Mounted(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("is %s mounted: %w", path, err)
	}
	return ok, nil
}

// IsReadOnly tells whether the mount at path is read-only.
func IsReadOnly(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Flags&unix.ST_RDONLY != 0, nil
}

// Usage is how much of a filesystem is used.
type Usage struct {
	Bytes, UsedBytes, FreeBytes    int64
	Inodes, UsedInodes, FreeInodes int64
}

// UsageOf is the use of the filesystem mounted at path. Free counts
// what an unprivileged writer may still use.
func UsageOf(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	bs := int64(st.Bsize)
	return Usage{
		Bytes:      int64(st.Blocks) * bs,
		UsedBytes:  int64(st.Blocks-st.Bfree) * bs,
		FreeBytes:  int64(st.Bavail) * bs,
		Inodes:     int64(st.Files),
		UsedInodes: int64(st.Files - st.Ffree),
		FreeInodes: int64(st.Ffree),
	}, nil
}
