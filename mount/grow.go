package mount

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// growSlack is how much larger than its filesystem a device must be for
// the filesystem to be grown: mkfs and the grow tools leave a remainder
// too small for a block group (ext4) or an allocation group (xfs) unused.
const growSlack = 1 * mib

// DeviceSize is the size of block device dev in bytes.
func DeviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return 0, &os.PathError{Op: "BLKGETSIZE64", Path: dev, Err: errno}
	}
	return int64(n), nil
}

// FilesystemSize is the type and size in bytes of the filesystem on an
// unmounted device, from its superblock read past the page cache (which
// may hold a superblock older than the device's). "" is a filesystem
// this package cannot grow.
func FilesystemSize(dev string) (string, int64, error) {
	buf, err := readDirect(dev, 4096)
	if err != nil {
		return "", 0, err
	}
	switch {
	case string(buf[0:4]) == "XFSB":
		// sb_blocksize (be32 at 4), sb_dblocks (be64 at 8).
		return "xfs", int64(binary.BigEndian.Uint32(buf[4:])) * int64(binary.BigEndian.Uint64(buf[8:])), nil
	case binary.LittleEndian.Uint16(buf[1024+0x38:]) == 0xEF53:
		sb := buf[1024:]
		blocks := uint64(binary.LittleEndian.Uint32(sb[0x4:]))
		if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
			blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
		}
		return "ext4", int64(blocks) << (10 + binary.LittleEndian.Uint32(sb[0x18:])), nil
	}
	return "", 0, nil
}

// readDirect reads the first n bytes of dev with O_DIRECT, into memory
// aligned as it requires.
func readDirect(dev string, n int) ([]byte, error) {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dev, Err: err}
	}
	defer unix.Close(fd)
	buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	defer unix.Munmap(buf)
	if _, err := unix.Pread(fd, buf, 0); err != nil {
		return nil, &os.PathError{Op: "read", Path: dev, Err: err}
	}
	return append([]byte(nil), buf...), nil
}

// smallerThanDevice tells whether the filesystem on unmounted dev leaves
// room on the device to grow into: its volume was grown since.
func smallerThanDevice(dev string) bool {
	fs, size, err := FilesystemSize(dev)
	if err != nil || fs == "" {
		return false
	}
	devSize, err := DeviceSize(dev)
	return err == nil && devSize-size >= growSlack
}

// GrowError is Mount's answer when the volume is mounted but its
// filesystem could not be grown to its device's size: the data is there,
// the room is not yet.
type GrowError struct{ Err error }

func (e *GrowError) Error() string { return e.Err.Error() }
func (e *GrowError) Unwrap() error { return e.Err }

// Grow grows the filesystem of the volume mounted at its target, online,
// to the size of its device: resize2fs for ext2/3/4, xfs_growfs for xfs.
// A filesystem as large as its device already is left as it is.
func (m *Mounter) Grow(ctx context.Context, device, name string) error {
	target := m.Target(name)
	mounted, err := m.IsMounted(name)
	if err != nil {
		return err
	}
	if !mounted {
		return fmt.Errorf("grow the filesystem of %s: not mounted at %s", name, target)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: target, Err: err}
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		_, err = run(ctx, "resize2fs", device)
	case unix.XFS_SUPER_MAGIC:
		_, err = run(ctx, "xfs_growfs", "-d", target)
	default:
		err = errors.New("only ext2/3/4 and xfs filesystems are grown")
	}
	if err != nil && st.Type == unix.EXT4_SUPER_MAGIC && strings.Contains(err.Error(), "Permission denied") {
		return fmt.Errorf("grow the filesystem on %s at %s online: the kernel refuses it without CAP_SYS_RESOURCE, which this process lacks; it grows at the volume's next mount instead (%w)", device, target, err)
	}
	if err != nil {
		return fmt.Errorf("grow the filesystem on %s at %s: %w", device, target, err)
	}
	return nil
}
