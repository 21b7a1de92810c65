// Package imagecopy copies a volume image into a new one: a reflink where
// the filesystem shares blocks, else the data extents only, so holes stay
// holes.
package imagecopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Copy fills dst, an empty file, with src's blocks: a reflink where the
// store's filesystem shares blocks between files (xfs with reflink=1,
// btrfs), otherwise a copy of the data extents only, so holes stay holes.
// A copy that outlasts ctx stops with ctx's error.
func Copy(ctx context.Context, dst, src *os.File) error {
	err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return fmt.Errorf("reflink: %w", err)
	}
	return copyExtents(ctx, dst, src)
}

// copyExtents copies the data extents of src to the same offsets in dst.
func copyExtents(ctx context.Context, dst, src *os.File) error {
	st, err := src.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if err := dst.Truncate(size); err != nil {
		return err
	}
	for off := int64(0); off < size; {
		start, err := unix.Seek(int(src.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return fmt.Errorf("find data: %w", err)
		}
		end, err := unix.Seek(int(src.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("find hole: %w", err)
		}
		if err := copyRange(ctx, dst, src, start, end-start); err != nil {
			return err
		}
		off = end
	}
	return dst.Sync()
}

// copyRange copies n bytes at off, in the kernel where it can, a chunk at
// a time so that a deadline is noticed.
func copyRange(ctx context.Context, dst, src *os.File, off, n int64) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("copy stopped at byte %d: %w", off, err)
		}
		roff, woff := off, off
		c, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(n, 64<<20)), 0)
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
			return copyRangeUser(dst, src, off, n)
		}
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if c == 0 {
			return fmt.Errorf("copy: %w", io.ErrUnexpectedEOF)
		}
		off, n = off+int64(c), n-int64(c)
	}
	return nil
}

func copyRangeUser(dst, src *os.File, off, n int64) error {
	_, err := io.Copy(io.NewOffsetWriter(dst, off), io.NewSectionReader(src, off, n))
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}
