package loopback

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
)

// checkRoom checks that the store could hold a new volume of size bytes
// written in full, beside what its volumes may still write into the holes
// of their sparse images. A create beyond it overcommits the store:
// logged as a warning, or refused without Overcommit.
func (d *Driver) checkRoom(ctx context.Context, name string, size int64) error {
	free, err := d.Capacity(ctx)
	if err != nil {
		return err
	}
	promised, err := d.unwritten()
	if err != nil {
		return fmt.Errorf("loopback store room: %w", err)
	}
	if size+promised <= free {
		return nil
	}
	setting := strings.ToUpper(d.cfg.Service) + "_OVERCOMMIT"
	figures := fmt.Sprintf("%s (%d bytes) asked, and the other volumes may still write %s (%d bytes) into their sparse images, where the store %s has %s (%d bytes) free",
		units.BytesSize(float64(size)), size, units.BytesSize(float64(promised)), promised, d.cfg.VolumePath, units.BytesSize(float64(free)), free)
	if !d.cfg.Overcommit {
		return &noRoomError{fmt.Sprintf("not enough room in the store: %s; %s=false refuses to overcommit it: free room in the store, ask for less, or set %s=true", figures, setting, setting)}
	}
	drivers.LogFrom(ctx, d.cfg.Log).WithField("volume", name).Warnf("the store is overcommitted: %s; writes will fail with no space left once the store is full (%s=false refuses such creates)", figures, setting)
	return nil
}

// noRoomError is checkRoom's refusal: its own message, matching
// drivers.ErrNoRoom.
type noRoomError struct{ msg string }

func (e *noRoomError) Error() string        { return e.msg }
func (e *noRoomError) Is(target error) bool { return target == drivers.ErrNoRoom }

// unwritten is how many bytes the store's images may still take: for
// each, its size less what it has allocated. Entries that are not regular
// files are not volumes of the store, and are skipped unfollowed.
func (d *Driver) unwritten() (int64, error) {
	names, err := d.vols.names()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Lstat(d.imagePath(n), &st); err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return 0, &os.PathError{Op: "lstat", Path: d.imagePath(n), Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if hole := st.Size - st.Blocks*512; hole > 0 {
			total += hole
		}
	}
	return total, nil
}
