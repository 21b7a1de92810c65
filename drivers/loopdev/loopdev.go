// Package loopdev drives loop devices with ioctls, for the drivers that
// attach a file as a block device.
package loopdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The loop devices are driven with ioctls rather than losetup: one less tool
// in the rootfs, no output to parse, and the backing file is matched by
// device and inode, which holds across mount namespaces where paths differ.

const loopMajor = 7

// FileID identifies a backing file independently of the path it is seen by.
type FileID struct{ dev, ino uint64 }

// IDOf is the FileID of the file at path.
func IDOf(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return FileID{dev: st.Dev, ino: st.Ino}, nil
}

// IDOfStat is the FileID of the file st describes.
func IDOfStat(st *unix.Stat_t) FileID { return FileID{dev: st.Dev, ino: st.Ino} }

// Tag marks a loop device with the instance that bound it, in the device's
// file name field. Loop devices are one per kernel: where several instances
// share a kernel (a test cluster of network namespaces), each must see only
// its own, never another's device over the same image.
func Tag(instance string) string {
	tag := "rexray:" + instance
	return tag[:min(len(tag), unix.LO_NAME_SIZE-1)]
}

// Attach binds image to a free loop device, tagged with tag. Direct I/O is
// asked for when directIO is set and dropped if the backing filesystem
// refuses it.
func Attach(image, tag string, directIO bool) (string, error) {
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return AttachFile(f, tag, directIO)
}

// AttachFile binds f, open for reading and writing, as Attach binds an
// image: for a caller that opened it with checks of its own.
func AttachFile(f *os.File, tag string, directIO bool) (string, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer ctl.Close()

	// Another process may take the free device between GET_FREE and
	// CONFIGURE; the loser sees EBUSY and asks again.
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("find a free loop device: %w", err)
		}
		dev, err := configureLoop(n, f, tag, directIO)
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		return dev, err
	}
	return "", fmt.Errorf("find a free loop device: every candidate was taken concurrently")
}

func configureLoop(n int, backing *os.File, tag string, directIO bool) (string, error) {
	dev := "/dev/loop" + strconv.Itoa(n)
	if err := ensureNode(dev, n); err != nil {
		return "", err
	}
	lf, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer lf.Close()

	cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
	copy(cfg.Info.File_name[:], tag)
	if directIO {
		cfg.Info.Flags = unix.LO_FLAGS_DIRECT_IO
	}
	err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
	if errors.Is(err, unix.EINVAL) && directIO {
		cfg.Info.Flags = 0
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
	}
	if err != nil {
		return "", fmt.Errorf("configure %s: %w", dev, err)
	}
	return dev, nil
}

// ensureNode creates the device node when /dev does not show it yet (a
// private /dev without devtmpfs).
func ensureNode(dev string, n int) error {
	if _, err := os.Stat(dev); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(loopMajor, uint32(n))))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mknod", Path: dev, Err: err}
	}
	return nil
}

// Detach unbinds a loop device. The kernel lets go of the backing file once
// the device is no longer open (mounted).
func Detach(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	return nil
}

// Settle waits while dev, bound to the file id, has a detach pending: one
// asked for while another process had the device open (every instance's
// Bound opens each device for a moment), which the kernel carries out at
// that process's last close. It reports whether dev has let go of the
// file; a device attached without a pending detach answers at once.
func Settle(ctx context.Context, dev string, id FileID) bool {
	ctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		info, err := loopStatus(dev)
		if err != nil || (FileID{dev: info.Device, ino: info.Inode}) != id {
			return true
		}
		if info.Flags&unix.LO_FLAGS_AUTOCLEAR == 0 {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// settleWait bounds Settle: a status read holds a device for microseconds,
// a mount in some other namespace for as long as it stays.
const settleWait = time.Second

// Bound maps the backing file of every bound loop device tagged tag to the
// device. Untagged devices (bound by an earlier rexray, or by losetup)
// count as this instance's.
func Bound(tag string) (map[FileID]string, error) {
	names, err := boundLoops()
	if err != nil {
		return nil, err
	}
	bound := make(map[FileID]string, len(names))
	for _, name := range names {
		dev := "/dev/" + name
		info, err := loopStatus(dev)
		if err != nil {
			// Unbound since the glob, or not ours to read: skip.
			continue
		}
		if owner := unix.ByteSliceToString(info.File_name[:]); strings.HasPrefix(owner, "rexray:") && owner != tag {
			continue // another instance's
		}
		bound[FileID{dev: info.Device, ino: info.Inode}] = dev
	}
	return bound, nil
}

// Orphan is a loop device whose backing file was deleted: no path leads
// to the file any more, and the device alone keeps its blocks.
type Orphan struct {
	Device string
	File   FileID
	// Name is the file's last name in its folder (v.img).
	Name string
}

// deletedMark is what the kernel appends to the path of an unlinked file.
const deletedMark = " (deleted)"

// Orphans lists the bound loop devices tagged tag whose backing file was
// deleted. Untagged devices are left out: an untagged device may be
// anybody's. The kernel shows the backing file's path as this mount
// namespace sees it, and marks an unlinked one " (deleted)"; the last name
// holds in every namespace.
func Orphans(tag string) ([]Orphan, error) {
	names, err := boundLoops()
	if err != nil {
		return nil, err
	}
	var orphans []Orphan
	for _, name := range names {
		dev := "/dev/" + name
		b, err := os.ReadFile("/sys/block/" + name + "/loop/backing_file")
		if err != nil {
			continue // unbound since the listing
		}
		path, deleted := strings.CutSuffix(strings.TrimSuffix(string(b), "\n"), deletedMark)
		if !deleted {
			continue
		}
		info, err := loopStatus(dev)
		if err != nil || unix.ByteSliceToString(info.File_name[:]) != tag {
			continue
		}
		orphans = append(orphans, Orphan{
			Device: dev,
			File:   FileID{dev: info.Device, ino: info.Inode},
			Name:   filepath.Base(path),
		})
	}
	return orphans, nil
}

// OnFilesystemOf tells whether the file id lies on the filesystem that
// holds path.
func (id FileID) OnFilesystemOf(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Dev == id.dev, nil
}

func loopStatus(dev string) (*unix.LoopInfo64, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return unix.IoctlLoopGetStatus64(int(f.Fd()))
}

// BoundNames maps every bound loop device to the path of its backing file,
// as sysfs shows it to this mount namespace. The path stays readable when
// the file can no longer be reached (its FUSE server died), which is when a
// match by FileID cannot work.
func BoundNames() (map[string]string, error) {
	bound, err := boundLoops()
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(bound))
	for _, name := range bound {
		b, err := os.ReadFile("/sys/block/" + name + "/loop/backing_file")
		if err != nil {
			continue // unbound since the listing
		}
		names["/dev/"+name] = strings.TrimSuffix(string(b), "\n")
	}
	return names, nil
}

// boundLoops lists the bound loop devices (loop0, ...). It runs on every
// Mount and Unmount, and a host has dozens of loop devices: the kernel
// lists in /proc/partitions only disks with a size, which for a loop device
// means bound, so one read replaces a look at every device's sysfs folder
// (0.37 ms a call with 64 devices, which was a quarter of the plugin's CPU
// time in a docker run). The images this package binds are never empty.
func boundLoops() ([]string, error) {
	b, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		// Whole loop devices only: loop3, not its partition loop3p1.
		if n, ok := strings.CutPrefix(f[3], "loop"); ok {
			if _, err := strconv.Atoi(n); err == nil {
				names = append(names, f[3])
			}
		}
	}
	return names, nil
}
