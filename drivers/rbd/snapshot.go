package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rexray/rexray/drivers"
)

// snapRef is where a snapshot lives: POOL/IMAGE@NAME.
type snapRef struct {
	pool, image, name string
	size              int64
}

func (s snapRef) spec() string { return spec(s.pool, s.image) + "@" + s.name }

// removedPfx starts the name of the image of a removed volume that still
// has snapshots: with privatePfx, which no volume's name can start with,
// so that it lists as no volume and a new volume may take the name.
const removedPfx = privatePfx + "removed."

// removedImage is the name the image of volume takes when the volume is
// removed with snapshots: unique, ending with the volume's name, which
// its snapshots go on naming.
func removedImage(volume string) string {
	return removedPfx + strconv.FormatInt(time.Now().UnixNano(), 36) + "." + volume
}

// volumeOf is the volume image is, or was before its removal.
func volumeOf(image string) string {
	rest, ok := strings.CutPrefix(image, removedPfx)
	if !ok {
		return image
	}
	_, name, _ := strings.Cut(rest, ".")
	return name
}

// snapshotsKey is the memo's entry of the call's listing of snapshots: no
// volume's name is empty.
const snapshotsKey = ""

// snapshots lists every user snapshot of every pool, as this call listed
// them if it did.
func (d *Driver) snapshots(ctx context.Context) ([]snapRef, error) {
	if e, ok := d.memo.get(ctx, snapshotsKey); ok && e.snaps != nil {
		return e.snaps, nil
	}
	refs, err := d.listSnapshots(ctx)
	if err == nil {
		d.memo.update(ctx, snapshotsKey, func(e *memoEntry) { e.snaps = append([]snapRef{}, refs...) })
	}
	return refs, err
}

func (d *Driver) listSnapshots(ctx context.Context) ([]snapRef, error) {
	pools, err := d.pools(ctx)
	if err != nil {
		return nil, err
	}
	var refs []snapRef
	for _, p := range pools {
		entries, err := d.list(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Snapshot == "" || drivers.ValidateSnapshotName(e.Snapshot) != nil {
				continue // an image, or one of rexray's private snapshots
			}
			refs = append(refs, snapRef{pool: p, image: e.Image, name: e.Snapshot, size: e.Size})
		}
	}
	return refs, nil
}

func (d *Driver) findSnapshot(ctx context.Context, name string) (snapRef, error) {
	refs, err := d.snapshots(ctx)
	if err != nil {
		return snapRef{}, err
	}
	for _, r := range refs {
		if r.name == name {
			return r, nil
		}
	}
	return snapRef{}, fmt.Errorf("snapshot %s: %w", name, drivers.ErrSnapshotNotFound)
}

func (d *Driver) describe(ctx context.Context, r snapRef) (drivers.Snapshot, error) {
	s := drivers.Snapshot{Name: r.name, VolumeName: volumeOf(r.image), Size: r.size}
	raw, err := d.metaGet(ctx, r.pool, r.image, snapKeyPfx+r.name)
	if err != nil || raw == "" {
		return s, err
	}
	var m snapshotMeta
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return s, fmt.Errorf("snapshot %s: metadata: %w", r.spec(), err)
	}
	s.FSType, s.CreatedAt = m.FSType, m.CreatedAt
	return s, nil
}

// CreateSnapshot implements drivers.Driver with an RBD snapshot, which is
// instant and copies nothing.
func (d *Driver) CreateSnapshot(ctx context.Context, volume, name string) (drivers.Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return drivers.Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	fail := func(err error) (drivers.Snapshot, error) {
		return drivers.Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, volume, err)
	}
	if _, err := d.findSnapshot(ctx, name); err == nil {
		return fail(drivers.ErrSnapshotExists)
	} else if !errors.Is(err, drivers.ErrSnapshotNotFound) {
		return fail(err)
	}
	v, err := d.Inspect(ctx, volume)
	if err != nil {
		return fail(err)
	}
	r := snapRef{pool: v.Fields["pool"], image: volume, name: name, size: v.Size}
	d.memo.forgetListings(ctx)
	if _, err := d.ceph.Run(ctx, "rbd", "snap", "create", "--no-progress", r.spec()); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return fail(drivers.ErrSnapshotExists)
		}
		return fail(err)
	}
	m := snapshotMeta{FSType: v.FSType, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := d.metaSet(ctx, r.pool, r.image, snapKeyPfx+name, m); err != nil {
		d.removeSnap(context.WithoutCancel(ctx), r)
		return fail(err)
	}
	return drivers.Snapshot{Name: name, VolumeName: volume, Size: v.Size, FSType: v.FSType, CreatedAt: m.CreatedAt}, nil
}

// Snapshots implements drivers.Driver.
func (d *Driver) Snapshots(ctx context.Context) ([]drivers.Snapshot, error) {
	refs, err := d.snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	snaps := make([]drivers.Snapshot, 0, len(refs))
	for _, r := range refs {
		s, err := d.describe(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// InspectSnapshot implements drivers.Driver.
func (d *Driver) InspectSnapshot(ctx context.Context, name string) (drivers.Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return drivers.Snapshot{}, err
	}
	r, err := d.findSnapshot(ctx, name)
	if err != nil {
		return drivers.Snapshot{}, err
	}
	return d.describe(ctx, r)
}

// RemoveSnapshot implements drivers.Driver. Volumes made from the snapshot
// are flattened when made, so nothing depends on it.
func (d *Driver) RemoveSnapshot(ctx context.Context, name string) error {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return err
	}
	r, err := d.findSnapshot(ctx, name)
	if err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	if err := d.removeSnap(ctx, r); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", name, err)
	}
	if err := d.metaRemove(ctx, r.pool, r.image, snapKeyPfx+name); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", name, err)
	}
	if volumeOf(r.image) != r.image {
		if err := d.dropRemoved(ctx, r.pool, r.image); err != nil {
			return fmt.Errorf("remove snapshot %s: the image of its removed volume: %w", name, err)
		}
	}
	return nil
}

// dropRemoved removes the image of a removed volume once it holds no
// snapshot.
func (d *Driver) dropRemoved(ctx context.Context, pool, image string) error {
	var snaps []json.RawMessage
	if err := d.ceph.RunJSON(ctx, &snaps, "rbd", "snap", "ls", spec(pool, image)); err != nil || len(snaps) > 0 {
		return err
	}
	_, err := d.ceph.Run(ctx, "rbd", "rm", "--no-progress", spec(pool, image))
	return err
}

// removeSnap removes a snapshot. rexray protects none now, but one an
// earlier version's interrupted clone or another tool protected may be
// (rm fails with EBUSY): it is unprotected, then removed.
func (d *Driver) removeSnap(ctx context.Context, r snapRef) error {
	d.memo.forgetListings(ctx)
	_, err := d.ceph.Run(ctx, "rbd", "snap", "rm", "--no-progress", r.spec())
	if !errors.Is(err, syscall.EBUSY) {
		return err
	}
	if _, err := d.ceph.Run(ctx, "rbd", "snap", "unprotect", r.spec()); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	_, err = d.ceph.Run(ctx, "rbd", "snap", "rm", "--no-progress", r.spec())
	return err
}

// copySnapshot makes image pool/name a copy of a snapshot that owns its
// blocks, so that the snapshot (and its volume) can be removed later.
func (d *Driver) copySnapshot(ctx context.Context, snapshot, pool, name string) (int64, error) {
	r, err := d.findSnapshot(ctx, snapshot)
	if err != nil {
		return 0, fmt.Errorf("source %w", err)
	}
	return r.size, d.copySnap(ctx, r, pool, name)
}

// copyVolume makes image pool/name a copy of a volume, through a private
// snapshot of it that is removed afterwards.
func (d *Driver) copyVolume(ctx context.Context, volume, pool, name string) (int64, error) {
	srcPool, info, err := d.find(ctx, volume)
	if err != nil {
		return 0, fmt.Errorf("source volume %s: %w", volume, err)
	}
	r := snapRef{pool: srcPool, image: info.Name, name: privatePfx + "copy-" + name}
	// A snapshot left by a crashed copy to the same name is reused.
	if _, err := d.ceph.Run(ctx, "rbd", "snap", "create", "--no-progress", r.spec()); err != nil && !errors.Is(err, syscall.EEXIST) {
		return 0, fmt.Errorf("snapshot of source volume %s: %w", volume, err)
	}
	err = d.copySnap(ctx, r, pool, name)
	if rerr := d.removeSnap(context.WithoutCancel(ctx), r); rerr != nil && err == nil {
		err = fmt.Errorf("remove the copy's snapshot %s: %w", r.spec(), rerr)
		d.ceph.Run(context.WithoutCancel(ctx), "rbd", "rm", "--no-progress", spec(pool, name))
	}
	return info.Size, err
}

// copySnap makes pool/name a full copy of snapshot r (rbd cp: only the
// blocks written are copied). A layered clone flattened at once copies
// the same blocks in three more tool runs (protect, flatten, unprotect),
// and leaves a protected snapshot behind if it fails part way. A copy that
// fails part way is removed; an image already there (EEXIST) is another
// create's, and is left alone.
func (d *Driver) copySnap(ctx context.Context, r snapRef, pool, name string) error {
	dst := spec(pool, name)
	if _, err := d.ceph.Run(ctx, "rbd", "cp", "--no-progress", "--image-feature", "layering", "--image-feature", "exclusive-lock", r.spec(), dst); err != nil {
		if !errors.Is(err, syscall.EEXIST) {
			d.ceph.Run(context.WithoutCancel(ctx), "rbd", "rm", "--no-progress", dst)
		}
		return err
	}
	// A copy takes its source's image-meta: the records of the source's
	// snapshots and owner are not the copy's.
	if err := d.dropInherited(ctx, pool, name); err != nil {
		d.ceph.Run(context.WithoutCancel(ctx), "rbd", "rm", "--no-progress", dst)
		return err
	}
	return nil
}

func (d *Driver) dropInherited(ctx context.Context, pool, image string) error {
	all, err := d.metaList(ctx, pool, image)
	if err != nil {
		return err
	}
	// What is left is the copy's image-meta: the call knows it.
	d.memo.update(ctx, image, func(e *memoEntry) { e.pool, e.meta = pool, maps.Clone(all) })
	for k := range all {
		if k == ownerKey || strings.HasPrefix(k, snapKeyPfx) {
			if err := d.metaRemove(ctx, pool, image, k); err != nil {
				return err
			}
		}
	}
	return nil
}
