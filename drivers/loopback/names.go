package loopback

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rexray/rexray/drivers"
)

// nameCache keeps a listing of a records folder with the folder's
// identity and change times. A folder whose inode, change and modification
// times and size are the same has gained or lost no entry, so a List of
// 10,000 volumes costs one open and fstat instead of reading 20,000
// entries, until something in the folder changes.
type nameCache struct {
	mu   sync.Mutex
	key  dirKey
	seen time.Time // when this host first saw the folder as key
	// names was read racyMargin or more after seen; nil until then.
	names []string
}

// dirKey is what changes when an entry of a folder is added, removed or
// renamed.
type dirKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

// racyMargin is how long after this host first saw a folder's times a
// listing must be read to be kept. Two changes within one tick of the
// filesystem's clock (coarse on Linux; the server's on NFS) leave the same
// times, so a listing read between them would hide the second for good; a
// listing read a margin after the times were first seen was read in a
// later tick than any change they show, and any change after it shows new
// times. Only this host's clock measures the margin: no skew matters.
const racyMargin = time.Second

// list lists the records of r, sorted, from the cache while the folder is
// unchanged. Opening the folder, rather than a stat of its path, makes an
// NFS client revalidate its attributes.
func (c *nameCache) list(r records) ([]string, error) {
	f, err := os.Open(r.dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("%s: %w", r.dir, err)
	}
	key := dirKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
	c.mu.Lock()
	defer c.mu.Unlock()
	if key == c.key && c.names != nil {
		return slices.Clone(c.names), nil
	}
	now := time.Now()
	if key != c.key {
		c.key, c.seen, c.names = key, now, nil
	}
	// Names alone, unsorted: sorting os.ReadDir's entries costs more than
	// reading them.
	entries, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.dir, err)
	}
	names := make([]string, 0, len(entries)/2)
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e, ".json"); ok && drivers.ValidateName(name) == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if now.Sub(c.seen) >= racyMargin {
		c.names = slices.Clone(names)
	}
	return names, nil
}
