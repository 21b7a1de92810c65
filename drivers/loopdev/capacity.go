package loopdev

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Grow makes loop device dev as large as its backing file now is
// (LOOP_SET_CAPACITY), while it stays bound and mounted.
func Grow(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("grow %s to its file's size: %w", dev, err)
	}
	return nil
}
