package engine

import (
	"context"
	"fmt"
	"sync"
)

// locks serialises operations on one volume while different volumes
// proceed in parallel. Waiting honours the context, so one stuck call cannot
// hang every later call on that volume past Docker's timeout.
type locks struct {
	mu sync.Mutex
	m  map[string]*volLock
}

type volLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

func newLocks() *locks { return &locks{m: map[string]*volLock{}} }

// lock takes the volume's lock and returns its release.
func (l *locks) lock(ctx context.Context, name string) (func(), error) {
	l.mu.Lock()
	vl := l.m[name]
	if vl == nil {
		vl = &volLock{ch: make(chan struct{}, 1)}
		l.m[name] = vl
	}
	vl.refs++
	l.mu.Unlock()

	select {
	case vl.ch <- struct{}{}:
		return func() { <-vl.ch; l.put(name, vl) }, nil
	case <-ctx.Done():
		l.put(name, vl)
		return nil, fmt.Errorf("volume %s is busy with another operation: %w", name, ctx.Err())
	}
}

func (l *locks) put(name string, vl *volLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if vl.refs--; vl.refs == 0 {
		delete(l.m, name)
	}
}

// Locked counts the volumes whose lock is held or waited for: none once
// every call has returned, whatever its outcome.
func (e *Engine) Locked() int {
	e.locks.mu.Lock()
	defer e.locks.mu.Unlock()
	return len(e.locks.m)
}
