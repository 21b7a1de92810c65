package rbd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/drivers/rbd/ceph"
)

// Ownership across hosts is Ceph's: the instance a volume is attached to is
// recorded in the image's metadata (rexray.owner), and its client holds the
// image's exclusive lock (the exclusive-lock feature: the client that
// writes holds it). Attaching an image another instance owns fails unless
// forced (preempt); then every lock on the image is broken with
// `rbd lock rm`, which makes librbd blocklist the holder's client address
// (the mon command "osd blocklist add"; rbd_blocklist_on_break_lock is on by
// default), so the old holder cannot write any more. The old host notices
// it lost the volume (watch) and clears its side.

// attacher turns an image into a local block device. Every method is
// idempotent and finds what an earlier process left.
type attacher interface {
	Method() string
	// Attach returns the device of pool/image, attaching it if needed.
	Attach(ctx context.Context, pool, image string) (string, error)
	// Device is the local device of pool/image, "" if none.
	Device(ctx context.Context, pool, image string) (string, error)
	// Detach releases the device, flushing what the client holds.
	Detach(ctx context.Context, pool, image string) error
	// Fence releases the device of an image this host lost, without
	// waiting on a client that can no longer reach the cluster.
	Fence(ctx context.Context, pool, image string) error
	// Attached lists the images attached here, as pool/image.
	Attached() ([][2]string, error)
}

// chooseAttacher picks the attach method from RBD_ATTACH and, for auto,
// from what the kernel offers.
func chooseAttacher(cfg Config, t ceph.Tools, instance string) (attacher, error) {
	m := cfg.Attach
	if m == "auto" || m == "" {
		m = autoMethod(exists)
	}
	switch m {
	case "krbd", "nbd":
		return &ceph.Mapper{Kind: m, Tools: t}, nil
	case "fuse":
		return &ceph.Fuse{Root: cfg.FusePath + "/" + instance, Tag: loopdev.Tag(instance), Tools: t}, nil
	}
	return nil, fmt.Errorf("RBD_ATTACH=%q: give auto, krbd, nbd or fuse", cfg.Attach)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// autoMethod: krbd where the kernel has the rbd module, rbd-nbd where it
// has nbd, else rbd-fuse with a loop device, which needs only FUSE.
func autoMethod(exists func(string) bool) string {
	switch {
	case exists("/sys/bus/rbd"):
		return "krbd"
	case exists("/sys/module/nbd") || exists("/dev/nbd0"):
		return "nbd"
	}
	return "fuse"
}

type lockInfo struct {
	ID      string `json:"id"`
	Locker  string `json:"locker"`
	Address string `json:"address"`
}

// Attach implements drivers.Driver.
func (d *Driver) Attach(ctx context.Context, name string, force bool) (string, error) {
	if err := drivers.ValidateName(name); err != nil {
		return "", err
	}
	pool, meta, err := d.locate(ctx, name)
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	if err := d.claim(ctx, pool, name, meta[ownerKey], force); err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	dev, err := d.att.Attach(ctx, pool, name)
	if err != nil {
		d.metaRemove(context.WithoutCancel(ctx), pool, name, ownerKey)
		return "", fmt.Errorf("attach volume %s (%s): %w", name, d.att.Method(), err)
	}
	return dev, nil
}

// takeover is what preempting a volume does to its holder.
const takeover = "fences the holder: its Ceph client is blocklisted and can no longer write"

// claim makes this instance the volume's owner, taking it from another
// with force. owner is the one the call read already; setOwner reads it
// again under the claim mutex.
func (d *Driver) claim(ctx context.Context, pool, image, owner string, force bool) error {
	if owner == d.instance {
		return nil
	}
	var locks []lockInfo
	if err := d.ceph.RunJSON(ctx, &locks, "rbd", "lock", "ls", spec(pool, image)); err != nil {
		return err
	}
	if owner != "" || len(locks) > 0 {
		if !force {
			held := ownerName(owner)
			if len(locks) > 0 {
				held += fmt.Sprintf(" (Ceph client %s at %s holds its lock)", locks[0].Locker, locks[0].Address)
			}
			return &drivers.HeldError{Volume: image, Holder: held, Takeover: takeover}
		}
		if err := d.breakLocks(ctx, pool, image, locks); err != nil {
			return fmt.Errorf("preempt %s: %w", ownerName(owner), err)
		}
		drivers.LogFrom(ctx, d.log).WithFields(logrus.Fields{"volume": image, "pool": pool}).
			Warnf("preempted from %s: %d lock(s) broken, their clients blocklisted", ownerName(owner), len(locks))
	}
	return d.setOwner(ctx, pool, image, owner)
}

// breakLocks breaks the image's locks; librbd blocklists each holder's
// address before it breaks its lock.
func (d *Driver) breakLocks(ctx context.Context, pool, image string, locks []lockInfo) error {
	for _, l := range locks {
		_, err := d.ceph.Run(ctx, "rbd", "lock", "rm", spec(pool, image), l.ID, l.Locker)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// setOwner records this instance as the volume's owner. The read and the
// write of the owner happen under a mutex, a RADOS object created with
// O_EXCL semantics (`rados create` fails if it exists), so of two hosts
// claiming a free volume at once one records itself and the other finds
// that owner. A mutex older than claimStale is a crashed claim's: removed.
// preempted is the owner a preempting claim takes the volume from.
func (d *Driver) setOwner(ctx context.Context, pool, image, preempted string) error {
	mutex := "rexray.claim." + image
	if err := d.lockClaim(ctx, pool, mutex); err != nil {
		return err
	}
	defer d.ceph.Run(context.WithoutCancel(ctx), "rados", "-p", pool, "rm", mutex)
	owner, err := d.metaGet(ctx, pool, image, ownerKey)
	if err != nil {
		return err
	}
	if owner != "" && owner != d.instance && owner != preempted {
		return &drivers.HeldError{Volume: image, Holder: ownerName(owner), Takeover: takeover}
	}
	return d.metaSet(ctx, pool, image, ownerKey, d.instance)
}

// claimStale is how old a claim mutex must be to be taken for a crash's.
const claimStale = 30 * time.Second

func (d *Driver) lockClaim(ctx context.Context, pool, mutex string) error {
	err := d.createObject(ctx, pool, mutex)
	if !errors.Is(err, syscall.EEXIST) {
		return err
	}
	if age, ok := d.objectAge(ctx, pool, mutex); ok && age > claimStale {
		d.ceph.Run(ctx, "rados", "-p", pool, "rm", mutex)
		if err := d.createObject(ctx, pool, mutex); !errors.Is(err, syscall.EEXIST) {
			return err
		}
	}
	return errors.New("another host is attaching it at this moment; try again")
}

// createObject creates an empty RADOS object, failing with EEXIST if it
// exists. `rados create` exits 1 then, and says "(17) File exists".
func (d *Driver) createObject(ctx context.Context, pool, name string) error {
	_, err := d.ceph.Run(ctx, "rados", "-p", pool, "create", name)
	if err != nil && strings.Contains(err.Error(), "(17) File exists") {
		return fmt.Errorf("%w: %w", syscall.EEXIST, err)
	}
	return err
}

// objectAge reads an object's mtime from `rados stat`, which prints
// "POOL/NAME mtime 2006-01-02T15:04:05.000000-0700, size N" (it has no
// JSON form).
func (d *Driver) objectAge(ctx context.Context, pool, name string) (time.Duration, bool) {
	out, err := d.ceph.Run(ctx, "rados", "-p", pool, "stat", name)
	if err != nil {
		return 0, false
	}
	_, rest, ok := strings.Cut(string(out), " mtime ")
	stamp, _, _ := strings.Cut(rest, ",")
	mtime, err := time.Parse("2006-01-02T15:04:05.000000-0700", strings.TrimSpace(stamp))
	if !ok || err != nil {
		return 0, false
	}
	return time.Since(mtime), true
}

// Detach implements drivers.Driver. A volume another instance took is
// fenced here rather than flushed: its client is blocklisted and would hang.
func (d *Driver) Detach(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	// The owner is read afresh: another host may have taken the volume
	// since this call began, and then it is fenced, not flushed.
	d.memo.dropMeta(ctx, name)
	pool, meta, err := d.locate(ctx, name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	owner := meta[ownerKey]
	if owner != "" && owner != d.instance {
		if err := d.att.Fence(ctx, pool, name); err != nil {
			return fmt.Errorf("detach volume %s (taken by %s): %w", name, owner, err)
		}
		return nil
	}
	here, err := d.attachedHere(pool, name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	if err := d.att.Detach(ctx, pool, name); err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	if owner == d.instance {
		if !here {
			if err := d.dropDeadLocks(ctx, pool, name); err != nil {
				return fmt.Errorf("detach volume %s: %w", name, err)
			}
		}
		if err := d.metaRemove(ctx, pool, name, ownerKey); err != nil {
			return fmt.Errorf("detach volume %s: %w", name, err)
		}
	}
	return nil
}

// Fence implements drivers.Fencer: the device goes at once, with -o force
// or by killing rbd-fuse, as the cluster blocklisted this client and I/O
// to it would hang in the kernel (D state) until its client is killed.
func (d *Driver) Fence(ctx context.Context, name string) error {
	pool, _, err := d.locate(ctx, name)
	if err != nil {
		return fmt.Errorf("fence volume %s: %w", name, err)
	}
	if err := d.att.Fence(ctx, pool, name); err != nil {
		return fmt.Errorf("fence volume %s: %w", name, err)
	}
	return nil
}

// attachedHere tells whether this host has anything attached of the image.
func (d *Driver) attachedHere(pool, image string) (bool, error) {
	imgs, err := d.att.Attached()
	if err != nil {
		return false, err
	}
	for _, pi := range imgs {
		if pi == [2]string{pool, image} {
			return true, nil
		}
	}
	return false, nil
}

// dropDeadLocks breaks the locks on an image this instance owns but has
// nothing attached of: they are a dead client's, an rbd-fuse that ended
// with the plugin (stopped under running containers). Its watch outlives
// it by about 30 s, and librbd waits for it before it changes the image's
// metadata; the plugin's start would wait as long.
func (d *Driver) dropDeadLocks(ctx context.Context, pool, image string) error {
	var locks []lockInfo
	if err := d.ceph.RunJSON(ctx, &locks, "rbd", "lock", "ls", spec(pool, image)); err != nil {
		return err
	}
	if len(locks) == 0 {
		return nil
	}
	drivers.LogFrom(ctx, d.log).WithFields(logrus.Fields{"volume": image, "pool": pool}).
		Warnf("breaking the lock of client %s, which no longer runs here", locks[0].Locker)
	return d.breakLocks(ctx, pool, image, locks)
}

// Watch implements drivers.Watcher: every LockCheck it reports through
// lost the attached volumes another instance took. The engine then fences
// each, beginning with Fence.
func (d *Driver) Watch(ctx context.Context, lost func(name string, why error)) {
	if d.cfg.LockCheck <= 0 {
		return
	}
	t := time.NewTicker(d.cfg.LockCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.reportLost(ctx, lost); err != nil && ctx.Err() == nil {
			d.log.Errorf("checking attached volumes for preemption: %v", err)
		}
	}
}

func (d *Driver) reportLost(ctx context.Context, lost func(name string, why error)) error {
	imgs, err := d.att.Attached()
	if err != nil {
		return err
	}
	var errs []error
	for _, pi := range imgs {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		owner, err := d.metaGet(cctx, pi[0], pi[1], ownerKey)
		if err == nil && owner != "" && owner != d.instance {
			lost(pi[1], fmt.Errorf("instance %s took it", owner))
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", strings.Join(pi[:], "/"), err))
		}
	}
	return errors.Join(errs...)
}
