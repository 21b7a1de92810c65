package rbd

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rexray/rexray/internal/reqid"
)

// A call asks about its volume's image several times: the engine's
// look-up, then Attach, Blank, RecordFormat each find the image again and
// read its metadata. Each question is a Ceph tool run, which loads librados
// and joins the cluster (about 2 s in an emulated VM, where a call's 25 s
// ran out). What a call learnt is kept for that call alone, by its request
// ID: another call, here or on another host, asks the cluster afresh.
// Reads that decide ownership (the owner under the claim mutex, the locks)
// are never taken from it.

// memoFresh bounds an entry's life: a call has 25 s.
const memoFresh = 30 * time.Second

// memo is what the calls in flight learnt of their images.
type memo struct {
	mu sync.Mutex
	m  map[memoKey]*memoEntry
}

type memoKey struct{ req, name string }

// memoEntry is one image as one call saw it. pool is "" for a name no pool
// holds; info.Name is "" until `rbd info` was read, meta nil until its
// image-meta was.
type memoEntry struct {
	at    time.Time
	pool  string
	info  imageInfo
	meta  map[string]string
	snaps []snapRef // for snapshotsKey: the call's listing of snapshots
	// For listingKey(pool): the call's `rbd ls -l` of the pool.
	listed  bool
	entries []listEntry
}

// listingKey is the memo's entry of the call's listing of pool: no
// volume's name holds a NUL.
func listingKey(pool string) string { return "\x00ls:" + pool }

func keyOf(ctx context.Context, name string) (memoKey, bool) {
	req := reqid.From(ctx)
	return memoKey{req, name}, req != ""
}

// get is a copy of what the call in ctx learnt of name.
func (c *memo) get(ctx context.Context, name string) (memoEntry, bool) {
	k, ok := keyOf(ctx, name)
	if !ok {
		return memoEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Since(e.at) > memoFresh {
		return memoEntry{}, false
	}
	cp := *e
	cp.meta = maps.Clone(e.meta)
	cp.snaps = slices.Clone(e.snaps)
	cp.entries = slices.Clone(e.entries)
	return cp, true
}

// update changes (or starts) the call's entry of name with fn.
func (c *memo) update(ctx context.Context, name string, fn func(e *memoEntry)) {
	k, ok := keyOf(ctx, name)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for k, e := range c.m {
		if now.Sub(e.at) > memoFresh {
			delete(c.m, k)
		}
	}
	if c.m == nil {
		c.m = make(map[memoKey]*memoEntry)
	}
	e, ok := c.m[k]
	if !ok {
		e = &memoEntry{at: now}
		c.m[k] = e
	}
	fn(e)
}

// forget drops what the call knows of name, after a change it cannot
// follow (a resize, a rename, a removal).
func (c *memo) forget(ctx context.Context, name string) {
	if k, ok := keyOf(ctx, name); ok {
		c.mu.Lock()
		delete(c.m, k)
		c.mu.Unlock()
	}
}

// forgetListings drops the call's listings of pools and of snapshots,
// once it made or removed an image or a snapshot.
func (c *memo) forgetListings(ctx context.Context) {
	req := reqid.From(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.req == req && (k.name == snapshotsKey || strings.HasPrefix(k.name, listingKey(""))) {
			delete(c.m, k)
		}
	}
}

// dropMeta makes the call read name's image-meta again.
func (c *memo) dropMeta(ctx context.Context, name string) {
	if k, ok := keyOf(ctx, name); ok {
		c.mu.Lock()
		if e, ok := c.m[k]; ok {
			e.meta = nil
		}
		c.mu.Unlock()
	}
}

// noteMeta records a change the call made to an image-meta key it knows
// ("" removes it).
func (c *memo) noteMeta(ctx context.Context, name, key, val string) {
	if _, ok := c.get(ctx, name); !ok {
		return
	}
	c.update(ctx, name, func(e *memoEntry) {
		if e.meta == nil {
			return
		}
		if val == "" {
			delete(e.meta, key)
		} else {
			e.meta[key] = val
		}
	})
}

// locate is the pool holding the image name and its image-meta, as this
// call knows them, else as the cluster tells: one run of `rbd image-meta
// list` on the default pool, which fails with ENOENT where it has no such
// image, and only then a search of the pools. For callers that need no
// size (Attach, Detach, Blank, RecordFormat).
func (d *Driver) locate(ctx context.Context, name string) (string, map[string]string, error) {
	if e, ok := d.memo.get(ctx, name); ok && e.pool != "" {
		if e.meta != nil {
			return e.pool, e.meta, nil
		}
		meta, err := d.metaList(ctx, e.pool, name)
		if err == nil {
			d.memo.update(ctx, name, func(e *memoEntry) { e.meta = maps.Clone(meta) })
		}
		return e.pool, meta, err
	}
	meta, err := d.metaList(ctx, d.cfg.DefaultPool, name)
	if err == nil {
		pool := d.cfg.DefaultPool
		d.memo.update(ctx, name, func(e *memoEntry) { e.pool, e.meta = pool, maps.Clone(meta) })
		return pool, meta, nil
	}
	if !errors.Is(err, syscall.ENOENT) {
		return "", nil, err
	}
	pool, _, err := d.find(ctx, name)
	if err != nil {
		return "", nil, err
	}
	meta, err = d.metaList(ctx, pool, name)
	if err == nil {
		d.memo.update(ctx, name, func(e *memoEntry) { e.meta = maps.Clone(meta) })
	}
	return pool, meta, err
}
