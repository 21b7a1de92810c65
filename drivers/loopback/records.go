package loopback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback/storefs"
	"github.com/rexray/rexray/internal/durable"
)

// records is one folder of images, each with its metadata beside it: the
// store's volumes, or its snapshots.
//
//	<dir>/<name>.img   the blocks (sparse)
//	<dir>/<name>.json  the metadata; the record exists once this does
type records struct {
	root     string // the store, trusted; what is beneath it is input
	dir      string
	instance string // this host, recorded as each new image's creator
}

func (r records) image(name string) string { return filepath.Join(r.dir, name+".img") }
func (r records) meta(name string) string  { return filepath.Join(r.dir, name+".json") }

// temp is where metadata is written before its rename into place. Its name
// is fixed, not random, so that what a crash leaves is found again by the
// next create or remove of the record.
func (r records) temp(name string) string { return filepath.Join(r.dir, "."+name+".json.tmp") }

// imageTemp is where this host makes name's image before linking it into
// place (see create).
func (r records) imageTemp(name string) string { return privateTemp(r.dir, name, "img", r.instance) }

// check refuses a record whose image or metadata is there but is not a
// regular file: a link someone put in the store is never written through.
func (r records) check(name string) error {
	for _, p := range []string{r.image(name), r.meta(name)} {
		if _, err := storefs.IDIn(r.root, p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// claim makes name's image: fill writes it under a name private to this
// host (a copy takes a while, and a plugin killed part way must leave no
// half-made image under the final name), it is then linked into place,
// and commit writes its metadata. The private name stays linked to the
// image until then: it is the mark by which another host tells a create
// in progress from what a crashed create left (an image without
// metadata), on any filesystem, user xattrs or not. That leftover is
// taken over, unless another host's mark is on it and it is younger than
// creatingGrace: then claim waits, within ctx and othersCreateWait, for
// that create to end: with its metadata the record is taken, and the
// caller compares what it asked for with what was made; without it (that
// create failed) the image is claimed again. taken is the error when the
// record exists.
func (r records) claim(ctx context.Context, name string, taken error, fill func(*os.File) error, commit func() error) error {
	f, err := r.build(name, fill)
	if err != nil {
		return err
	}
	// Closing lets go of the lock, once the temp has no more use.
	defer f.Close()
	defer os.Remove(f.Name())
	if err := r.place(ctx, name, f.Name(), taken); err != nil {
		return err
	}
	if err := commit(); err != nil {
		os.Remove(r.image(name))
		return err
	}
	return nil
}

// place links the built image tmp into place as name's image.
func (r records) place(ctx context.Context, name, tmp string, taken error) error {
	err := os.Link(tmp, r.image(name))
	if !errors.Is(err, os.ErrExist) {
		return err
	}
	made, err := r.awaitOthers(ctx, name)
	switch {
	case err != nil:
		return err
	case made:
		return taken
	}
	if err := os.Remove(r.image(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	err = os.Link(tmp, r.image(name))
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s is being created by another host sharing the store; try again in a moment", name)
	}
	return err
}

// build makes name's image at its private temp name, with its creator's
// name in an xattr where the store has them (for messages), and fills it.
// The temp is returned locked (flock) where the lock comes in time, so
// that the clean-up at start (sweepTemps) never takes a build in progress
// for a leftover.
func (r records) build(name string, fill func(*os.File) error) (*os.File, error) {
	f, err := r.lockedTemp(name)
	if err != nil {
		return nil, err
	}
	// Best effort: without user xattrs a message says "another host".
	unix.Fsetxattr(int(f.Fd()), creatorXattr, []byte(r.instance), 0)
	if err := fill(f); err != nil {
		os.Remove(f.Name())
		f.Close()
		return nil, err
	}
	return f, nil
}

// lockedTemp creates name's temp image and locks it. A sweep may remove
// the new file before the lock is had: then it is made again. On NFS a
// lock is the server's, and a server just restarted holds every new lock
// back for its grace period (90 s by default): then the build goes on
// unlocked rather than past the caller's deadline, the lock guarding only
// against a sweep by another process of this host starting meanwhile.
func (r records) lockedTemp(name string) (*os.File, error) {
	tmp := r.imageTemp(name)
	for range 3 {
		f, err := storefs.CreateIn(r.root, tmp, os.O_RDWR)
		if err != nil {
			return nil, err
		}
		// LOCK_NB: no one else may hold the lock on a file this call just
		// made but a sweep, which then removes it.
		err = flockWithin(f, unix.LOCK_EX|unix.LOCK_NB, lockWait)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			continue
		}
		if err != nil && !errors.Is(err, errLockLate) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", tmp, err)
		}
		var held, there unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Lstat(tmp, &there) == nil && held.Dev == there.Dev && held.Ino == there.Ino {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("%s was removed while it was being made, three times", tmp)
}

// sweepTemps removes the images this host's creates killed part way left
// at their private temp names (a copy's, above all: it may be as large as
// its source). Another host's temps are never touched: they have names of
// their own.
func (r records) sweepTemps() {
	suffix := ".img." + instanceHash(r.instance) + ".tmp"
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), suffix) {
			continue
		}
		path := filepath.Join(r.dir, e.Name())
		f, err := storefs.OpenIn(r.root, path, os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		// A build in progress (another process of this host) holds it,
		// or has just made it anew.
		var held, there unix.Stat_t
		if flockWithin(f, unix.LOCK_EX|unix.LOCK_NB, lockWait) == nil &&
			unix.Fstat(int(f.Fd()), &held) == nil && unix.Lstat(path, &there) == nil && held.Ino == there.Ino && held.Dev == there.Dev {
			os.Remove(path)
		}
		f.Close()
	}
}

// lockWait bounds the wait for a lock on a temp image; errLockLate says
// that it did not come within it (it may still come, and goes with the
// file's closing).
const lockWait = time.Second

var errLockLate = errors.New("no lock within " + lockWait.String())

// flockWithin is flock(2) on f, waiting at most wait for the answer. The
// call goes through f's RawConn, so that f's descriptor is not closed (nor
// its number reused) before a late answer comes.
func flockWithin(f *os.File, how int, wait time.Duration) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = unix.Flock(int(fd), how) }); cerr != nil {
			err = cerr
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		return errLockLate
	}
}

// awaitOthers waits while name's image is another host's create in
// progress. made tells that the record exists (that create ended with its
// metadata); false is an image to reclaim: a leftover, or none at all (that
// create failed).
func (r records) awaitOthers(ctx context.Context, name string) (made bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, othersCreateWait)
	defer cancel()
	for {
		if _, err := os.Lstat(r.meta(name)); err == nil {
			return true, nil
		}
		creator, fresh := r.othersFresh(name)
		if !fresh {
			// That create lets go of its temp name only once its metadata
			// is written: it may have ended between the two looks.
			_, err := os.Lstat(r.meta(name))
			return err == nil, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%s is being created by %s sharing the store, which did not finish within %s; try again in a moment", name, creator, othersCreateWait)
		case <-time.After(othersCreatePoll):
		}
	}
}

// othersCreateWait bounds how long a create waits for another host's
// create of the same name: well inside the 30 s dockerd gives a call.
// othersCreatePoll is how often it looks: the store may be NFS, where no
// change notification crosses hosts.
const (
	othersCreateWait = 10 * time.Second
	othersCreatePoll = 20 * time.Millisecond
)

// creatorXattr names the host that created an image; it goes with the file.
const creatorXattr = "user.rexray.creator"

// creatingGrace is how long another host's image without metadata is taken
// for a create in progress rather than a leftover.
const creatingGrace = 2 * time.Minute

// othersFresh tells whether name's image is another host's create in
// progress: linked from that host's private temp name, and made less than
// creatingGrace ago; and names that host.
func (r records) othersFresh(name string) (creator string, fresh bool) {
	var img unix.Stat_t
	if err := unix.Lstat(r.image(name), &img); err != nil || time.Since(time.Unix(img.Mtim.Unix())) > creatingGrace {
		return "", false
	}
	if img.Nlink < 2 || !r.othersTemp(name, img) {
		return "", false
	}
	buf := make([]byte, 256)
	if n, err := unix.Lgetxattr(r.image(name), creatorXattr, buf); err == nil {
		return "host " + string(buf[:n]), true
	}
	return "another host", true
}

// othersTemp tells whether another host's private temp name of name's
// image is the file img.
func (r records) othersTemp(name string, img unix.Stat_t) bool {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return false
	}
	prefix, own := "."+name+".img.", filepath.Base(r.imageTemp(name))
	for _, e := range entries {
		hash, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || e.Name() == own || !e.Type().IsRegular() || len(hash) != len(instanceHash("")+".tmp") || !strings.HasSuffix(hash, ".tmp") {
			continue
		}
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(r.dir, e.Name()), &st) == nil && st.Dev == img.Dev && st.Ino == img.Ino {
			return true
		}
	}
	return false
}

// read decodes name's metadata into v; notFound is the error when there
// is none.
func (r records) read(name string, v any, notFound error) error {
	b, err := storefs.ReadIn(r.root, r.meta(name))
	if errors.Is(err, os.ErrNotExist) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("%s: read metadata: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: metadata %s is corrupt: %w", name, r.meta(name), err)
	}
	return nil
}

// write puts v in place as name's metadata, atomically and durably.
func (r records) write(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir, err := storefs.OpenDirIn(r.root, r.dir)
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	defer unix.Close(dir)
	if err := durable.WriteAt(dir, filepath.Base(r.meta(name)), filepath.Base(r.temp(name)), b, 0o600); err != nil {
		return fmt.Errorf("write metadata of %s in %s: %w", name, r.dir, err)
	}
	return nil
}

// remove deletes name's files, metadata first: from then on the record is
// gone for a listing, and a crash leaves only files that the next create or
// remove reclaims. It reports whether there was anything to remove.
func (r records) remove(name string) (bool, error) {
	found := false
	for _, p := range []string{r.meta(name), r.temp(name), r.image(name), r.imageTemp(name)} {
		err := os.Remove(p)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, os.ErrNotExist):
			return found, err
		}
	}
	return found, nil
}

// names lists the records in the folder.
func (r records) names() ([]string, error) {
	entries, err := os.ReadDir(r.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a store made before snapshots had its folder
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && drivers.ValidateName(name) == nil {
			names = append(names, name)
		}
	}
	return names, nil
}
