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

func (d *Driver) newLease() lease {
	return lease{Holder: d.cfg.Instance, Expires: time.Now().Add(d.cfg.LeaseTTL).UTC()}
}

// createLease takes a free volume; os.ErrExist if another host was first.
func (d *Driver) createLease(name string) error {
	dir, err := d.volumesDir()
	if err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	defer unix.Close(dir)
	tmp, err := d.writeTemp(dir, name, "lease", d.newLease())
	if err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	defer unix.Unlinkat(dir, tmp, 0)
	if err := unix.Linkat(dir, tmp, dir, filepath.Base(d.leasePath(name)), 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return os.ErrExist
		}
		return fmt.Errorf("take lease: %w", &os.LinkError{Op: "link", Old: filepath.Join(d.dir, tmp), New: d.leasePath(name), Err: err})
	}
	if err := durable.SyncDirAt(dir); err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	return nil
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
	return d.renew(name)
}

// renew extends this host's lease; errLost if it is not this host's.
func (d *Driver) renew(name string) error {
	dir, err := d.volumesDir()
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	defer unix.Close(dir)
	// The new lease is written before the holder is checked, so that
	// nothing slow (the write's sync) comes between the check and the
	// rename, while another host may break the lease.
	tmp, err := d.writeTemp(dir, name, "lease", d.newLease())
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
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
		return err
	}
	return durable.RenameAt(dir, tmp, filepath.Base(d.leasePath(name)))
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
	return nil
}

// tryAcquire takes a free lease or renews this host's own. Otherwise it
// returns the other host's lease, or errRetry when it changed meanwhile.
func (d *Driver) tryAcquire(name string) (lease, bool, error) {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	l, ok, err := d.readLease(name)
	switch {
	case err != nil:
		return l, false, err
	case !ok:
		err = d.createLease(name)
	case l.Holder == d.cfg.Instance:
		err = d.renew(name)
	default:
		return l, false, nil
	}
	if errors.Is(err, os.ErrExist) || errors.Is(err, errLost) {
		return lease{}, false, errRetry
	}
	if err != nil {
		return l, false, err
	}
	d.held.add(name)
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
// for it (preempt), took it, or when its lease could not be renewed for
// two thirds of LeaseTTL, so this host stops writing before another may
// start. The caller fences the volume, then detaches it.
func (d *Driver) Watch(ctx context.Context, lost func(name string, why error)) {
	d.reclaim()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	renewed := make(map[string]time.Time)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, name := range d.held.names() {
			if why := d.keep(name, renewed); why != nil {
				d.held.remove(name)
				delete(renewed, name)
				lost(name, why)
			}
		}
	}
}

// keep renews a lease when due; an error is why the volume is lost.
func (d *Driver) keep(name string, renewed map[string]time.Time) error {
	var req preemptRequest
	if ok, _ := d.readJSON(d.preemptPath(name), &req); ok && req.By != d.cfg.Instance {
		return fmt.Errorf("host %s preempted it", req.By)
	}
	last, ok := renewed[name]
	if !ok {
		last = time.Now() // acquired just now, or by the plugin before
		renewed[name] = last
	}
	if time.Since(last) < d.cfg.LeaseTTL/5 {
		return nil
	}
	err := d.renewHeld(name)
	if err == nil {
		d.renewals.Add(1)
	} else {
		d.renewFailures.Add(1)
	}
	switch {
	case err == nil:
		renewed[name] = time.Now()
		return nil
	case errors.Is(err, errLost):
		return err
	case time.Since(last) > d.cfg.LeaseTTL*2/3:
		return fmt.Errorf("its lease could not be renewed since %s (%w): giving it up before another host may take it", last.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// heldSet is the volumes whose leases this host keeps.
type heldSet struct {
	mu  sync.Mutex
	set map[string]bool
}

func newHeldSet() *heldSet { return &heldSet{set: make(map[string]bool)} }

func (h *heldSet) add(name string) {
	h.mu.Lock()
	h.set[name] = true
	h.mu.Unlock()
}

func (h *heldSet) remove(name string) {
	h.mu.Lock()
	delete(h.set, name)
	h.mu.Unlock()
}

func (h *heldSet) has(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.set[name]
}

func (h *heldSet) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.set))
}
