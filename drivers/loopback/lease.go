package loopback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback/storefs"
	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/internal/durable"
)

// Leases make a store shared between hosts safe: a host attaches a volume
// only while it holds the volume's lease, a small record beside the image:
//
//	<store>/volumes/<name>.lease    {"holder": "<instance>", "expires": ...}
//	<store>/volumes/<name>.preempt  {"by": "<instance>"}: a request to give it up
//
// A lease is created with link(2), which fails if one exists, so two hosts
// never both create one; it is renewed by its holder with rename(2), which
// replaces it whole; it is removed by its holder on detach, or by a host
// that finds it expired. docs/leases.md tells the whole protocol.

type lease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

type preemptRequest struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// errRetry says the lease changed while it was being taken.
var errRetry = errors.New("lease changed meanwhile")

// errLost is a renewal's answer when the lease is no longer this host's.
var errLost = errors.New("its lease is no longer this host's")

func (d *Driver) leasePath(name string) string   { return filepath.Join(d.dir, name+".lease") }
func (d *Driver) preemptPath(name string) string { return filepath.Join(d.dir, name+".preempt") }

func (d *Driver) tempPath(name, kind string) string {
	return privateTemp(d.dir, name, kind, d.cfg.Instance)
}

// privateTemp is a file in dir only this instance writes, so that hosts
// never write one file at once.
func privateTemp(dir, name, kind, instance string) string {
	return filepath.Join(dir, "."+name+"."+kind+"."+instanceHash(instance)+".tmp")
}

// removeTemps removes the lease and preempt temp files any instance left
// for the volume name: a host killed between writing one and renaming it
// into place never comes back for it. No host holds the volume's lease
// while it is removed, so none is renewing it.
func (d *Driver) removeTemps(name string) error {
	hash := strings.Repeat("[0-9a-f]", len(instanceHash("")))
	for _, kind := range []string{"lease", "preempt"} {
		paths, _ := filepath.Glob(filepath.Join(d.dir, "."+name+"."+kind+"."+hash+".tmp"))
		for _, p := range paths {
			if err := removeIfExists(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// instanceHash stands for an instance in file names: instance IDs may hold
// any character.
func instanceHash(instance string) string {
	sum := sha256.Sum256([]byte(instance))
	return hex.EncodeToString(sum[:6])
}

func (d *Driver) readJSON(path string, v any) (bool, error) {
	b, err := storefs.ReadIn(d.cfg.VolumePath, path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%s is unreadable: %w", path, err)
	}
	return true, nil
}

func (d *Driver) readLease(name string) (lease, bool, error) {
	var l lease
	ok, err := d.readJSON(d.leasePath(name), &l)
	return l, ok, err
}

// volumesDir opens the folder the leases are in (O_PATH), following no
// link below the store's root; the caller closes it.
func (d *Driver) volumesDir() (int, error) { return storefs.OpenDirIn(d.cfg.VolumePath, d.dir) }

// writeTemp writes v, durably, to this instance's temp file of kind in the
// folder dir, and returns the temp's name there.
func (d *Driver) writeTemp(dir int, name, kind string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	tmp := filepath.Base(d.tempPath(name, kind))
	return tmp, durable.WriteTempAt(dir, tmp, b, 0o600)
}

// newLease is a lease of this host from now on; it also returns that now,
// the time the holder's self-fence counts from (never from when the write
// returned, which on a slow store may be much later).
func (d *Driver) newLease() (lease, time.Time) {
	now := time.Now()
	return lease{Holder: d.cfg.Instance, Expires: now.Add(d.cfg.LeaseTTL).UTC()}, now
}

// createLease takes a free volume; os.ErrExist if another host was first.
// It returns the time the new lease counts from.
func (d *Driver) createLease(name string) (time.Time, error) {
	dir, err := d.volumesDir()
	if err != nil {
		return time.Time{}, fmt.Errorf("take lease: %w", err)
	}
	defer unix.Close(dir)
	l, from := d.newLease()
	tmp, err := d.writeTemp(dir, name, "lease", l)
	if err != nil {
		return time.Time{}, fmt.Errorf("take lease: %w", err)
	}
	defer unix.Unlinkat(dir, tmp, 0)
	if err := unix.Linkat(dir, tmp, dir, filepath.Base(d.leasePath(name)), 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return time.Time{}, os.ErrExist
		}
		return time.Time{}, fmt.Errorf("take lease: %w", &os.LinkError{Op: "link", Old: filepath.Join(d.dir, tmp), New: d.leasePath(name), Err: err})
	}
	if err := durable.SyncDirAt(dir); err != nil {
		return time.Time{}, fmt.Errorf("take lease: %w", err)
	}
	return from, nil
}

// renewHeld renews the lease of a volume this host still holds. A Detach
// running meanwhile removes the volume from the set first, so a renewal
// never brings back a lease just released.
func (d *Driver) renewHeld(name string) error {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	if !d.held.has(name) {
		return nil
	}
	from, err := d.renew(name)
	if err == nil {
		d.held.renewed(name, from)
	}
	return err
}

// renew extends this host's lease; errLost if it is not this host's. It
// returns the time the renewed lease counts from.
func (d *Driver) renew(name string) (time.Time, error) {
	dir, err := d.volumesDir()
	if err != nil {
		return time.Time{}, fmt.Errorf("renew lease: %w", err)
	}
	defer unix.Close(dir)
	// The new lease is written before the holder is checked, so that
	// nothing slow (the write's sync) comes between the check and the
	// rename, while another host may break the lease.
	nl, from := d.newLease()
	tmp, err := d.writeTemp(dir, name, "lease", nl)
	if err != nil {
		return time.Time{}, fmt.Errorf("renew lease: %w", err)
	}
	l, ok, err := d.readLease(name)
	switch {
	case err != nil:
	case !ok || l.Holder != d.cfg.Instance:
		err = errLost
	case time.Now().After(l.Expires):
		// Stalled past its own lease (a store that hung): another host
		// may be breaking it now, between this check and the rename.
		err = fmt.Errorf("its lease ran out at %s before this host could renew it: %w", l.Expires.UTC().Format(time.RFC3339), errLost)
	}
	if err != nil {
		unix.Unlinkat(dir, tmp, 0)
		return time.Time{}, err
	}
	return from, durable.RenameAt(dir, tmp, filepath.Base(d.leasePath(name)))
}

// breakLease removes an expired lease, unless it changed since it was read.
func (d *Driver) breakLease(name string, expired lease) error {
	now, ok, err := d.readLease(name)
	if err != nil || !ok || now != expired {
		return err
	}
	if err := os.Remove(d.leasePath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("take over expired lease of host %s: %w", expired.Holder, err)
	}
	d.cfg.Log.WithField("volume", name).Infof("the lease of host %s ran out at %s: taking the volume over", expired.Holder, expired.Expires.UTC().Format(time.RFC3339Nano))
	return nil
}

// tryAcquire takes a free lease or renews this host's own. Otherwise it
// returns the other host's lease, or errRetry when it changed meanwhile.
func (d *Driver) tryAcquire(name string) (lease, bool, error) {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	l, ok, err := d.readLease(name)
	var from time.Time
	switch {
	case err != nil:
		return l, false, err
	case !ok:
		from, err = d.createLease(name)
	case l.Holder == d.cfg.Instance:
		from, err = d.renew(name)
	default:
		return l, false, nil
	}
	if errors.Is(err, os.ErrExist) || errors.Is(err, errLost) {
		return lease{}, false, errRetry
	}
	if err != nil {
		return l, false, err
	}
	d.held.add(name, from)
	return l, true, nil
}

// acquire takes or renews this host's lease on a volume. A volume another
// live host holds is refused, or with force that host is asked to give it
// up and acquire waits for it to (or for its lease to run out).
func (d *Driver) acquire(ctx context.Context, name string, force bool) error {
	asked := false
	defer func() {
		if asked {
			os.Remove(d.preemptPath(name))
		}
	}()
	for {
		l, done, err := d.tryAcquire(name)
		switch {
		case errors.Is(err, errRetry):
			continue // another host got there first: look again
		case err != nil:
			return err
		case done:
			return nil
		case time.Now().After(l.Expires):
			if err := d.breakLease(name, l); err != nil {
				return err
			}
			continue
		case !force:
			return &drivers.HeldError{Volume: name, Holder: "host " + l.Holder, Until: l.Expires}
		case !asked:
			if err := d.askPreempt(name); err != nil {
				return err
			}
			asked = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("host %s did not give volume %s up, and its lease runs until %s: %w", l.Holder, name, l.Expires.UTC().Format(time.RFC3339), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Driver) askPreempt(name string) error {
	b, err := json.Marshal(preemptRequest{By: d.cfg.Instance, At: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("ask for preemption: %w", err)
	}
	dir, err := d.volumesDir()
	if err != nil {
		return fmt.Errorf("ask for preemption: %w", err)
	}
	defer unix.Close(dir)
	if err := durable.WriteAt(dir, filepath.Base(d.preemptPath(name)), filepath.Base(d.tempPath(name, "preempt")), b, 0o600); err != nil {
		return fmt.Errorf("ask for preemption: %w", err)
	}
	d.cfg.Log.WithField("volume", name).Debug("asked its holder to give it up")
	return nil
}

// release gives up this host's lease, if it still has it.
func (d *Driver) release(name string) error {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	d.held.remove(name)
	l, ok, err := d.readLease(name)
	if err != nil || !ok || l.Holder != d.cfg.Instance {
		return err
	}
	if err := os.Remove(d.leasePath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// holder tells which other live host holds a volume, if any.
func (d *Driver) holder(name string) (lease, bool, error) {
	l, ok, err := d.readLease(name)
	if err != nil || !ok || l.Holder == d.cfg.Instance || time.Now().After(l.Expires) {
		return lease{}, false, err
	}
	return l, true, nil
}

// reclaim removes this host's leases on volumes it has not attached: what
// a plugin killed between taking a lease and binding the device, or between
// releasing the device and the lease, leaves. It runs after the plugin's
// start-up has held again what it still uses.
func (d *Driver) reclaim() {
	paths, _ := filepath.Glob(filepath.Join(d.dir, "*.lease"))
	bound, err := loopdev.Bound(d.tag)
	if err != nil {
		return
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".lease")
		if id, err := d.imageID(name); err == nil && bound[id] != "" {
			continue
		}
		if !d.held.has(name) {
			d.release(name)
		}
	}
}

// watchEvery is how often the holder looks for a preemption request.
const watchEvery = 250 * time.Millisecond

// Watch keeps this host's leases: it renews them every LeaseTTL/5, and
// reports a volume it must give up, through lost, when another host asked
// for it (preempt), took it, or when its lease has not been renewed for
// two thirds of LeaseTTL, so this host stops writing before another may
// start. The caller fences the volume, then detaches it. A volume another
// host asked for stays leased to this host, renewed, until that Detach (or
// for at most a LeaseTTL), so that a fence slower than the lease's rest
// (a flush to a busy NFS server) still ends before the asking host mounts.
//
// The store is looked at beside the clock, not in its way: a look that
// hangs (a store that stopped answering, an NFS server recalling a
// delegation) delays neither the self-fence nor, for other volumes, the
// look for a preemption request.
func (d *Driver) Watch(ctx context.Context, lost func(name string, why error)) {
	d.reclaim()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	looked := make(chan look)
	looking := make(map[string]bool)
	giveUp := func(name string, why error) {
		d.held.remove(name)
		lost(name, why)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-looked:
			delete(looking, l.name)
			var asked *preemptedError
			switch {
			case l.why == nil || !d.held.has(l.name):
			case errors.As(l.why, &asked):
				// The lease stays this host's, renewed, while the caller
				// fences the volume: the asking host gets it once it is
				// let go (Detach), never while this host may still write.
				if d.held.yield(l.name) {
					lost(l.name, l.why)
				}
			default:
				giveUp(l.name, l.why)
			}
			continue
		case <-t.C:
		}
		for name, h := range d.held.all() {
			switch {
			case time.Since(h.from) > d.cfg.LeaseTTL*2/3:
				giveUp(name, fmt.Errorf("its lease has not been renewed since %s: %w", h.from.UTC().Format(time.RFC3339), drivers.ErrHoldLapsing))
				continue
			case !h.yielded.IsZero() && time.Since(h.yielded) > d.cfg.LeaseTTL:
				// A fence that has not let go within a TTL is stuck: the
				// lease is left to run out, so the asking host is not
				// kept waiting for ever.
				d.held.remove(name)
				continue
			}
			if !looking[name] {
				looking[name] = true
				go func() {
					l := look{name: name, why: d.keep(name, h)}
					select {
					case looked <- l:
					case <-ctx.Done():
					}
				}()
			}
		}
	}
}

// look is what keep found for a volume.
type look struct {
	name string
	why  error
}

// preemptedError is what keep finds when another host asked for the
// volume.
type preemptedError struct{ by string }

func (e *preemptedError) Error() string { return "host " + e.by + " preempted it" }

// keep renews a lease when due; an error is why the volume is lost. A
// failed renewal is not: the clock in Watch decides when too many have
// failed. A volume already being given up is not asked about again.
func (d *Driver) keep(name string, h hold) error {
	if h.yielded.IsZero() {
		var req preemptRequest
		ok, err := d.readJSON(d.preemptPath(name), &req)
		if err != nil {
			d.cfg.Log.WithField("volume", name).Debugf("look for a preempt request: %v", err)
		}
		if ok && req.By != d.cfg.Instance {
			return &preemptedError{by: req.By}
		}
	}
	if time.Since(h.from) < d.cfg.LeaseTTL/5 {
		return nil
	}
	start := time.Now()
	err := d.renewHeld(name)
	if took := time.Since(start); took > d.cfg.LeaseTTL/5 {
		d.cfg.Log.WithField("volume", name).Warnf("renewing its lease took %s, more than a fifth of LOOPBACK_LEASETTL (%s): the store answers slowly", took.Round(time.Millisecond), d.cfg.LeaseTTL)
	}
	if err == nil {
		d.renewals.Add(1)
		return nil
	}
	d.renewFailures.Add(1)
	if errors.Is(err, errLost) {
		return err
	}
	return nil
}

// heldSet is the volumes whose leases this host keeps.
type heldSet struct {
	mu  sync.Mutex
	set map[string]hold
}

// hold is one kept lease: the time it counts from, and when this host
// began giving the volume up to another host that asked (zero if not).
type hold struct {
	from, yielded time.Time
}

func newHeldSet() *heldSet { return &heldSet{set: make(map[string]hold)} }

func (h *heldSet) add(name string, from time.Time) {
	h.mu.Lock()
	h.set[name] = hold{from: from}
	h.mu.Unlock()
}

// renewed moves a held lease's time on; a volume let go meanwhile stays so.
func (h *heldSet) renewed(name string, from time.Time) {
	h.mu.Lock()
	if e, ok := h.set[name]; ok {
		e.from = from
		h.set[name] = e
	}
	h.mu.Unlock()
}

// yield marks a held volume as being given up; false if it is not held or
// already so.
func (h *heldSet) yield(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.set[name]
	if !ok || !e.yielded.IsZero() {
		return false
	}
	e.yielded = time.Now()
	h.set[name] = e
	return true
}

func (h *heldSet) remove(name string) {
	h.mu.Lock()
	delete(h.set, name)
	h.mu.Unlock()
}

func (h *heldSet) has(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.set[name]
	return ok
}

func (h *heldSet) all() map[string]hold {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.set)
}

func (h *heldSet) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.set))
}
