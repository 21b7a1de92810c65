// Package locks serialises the calls on one volume while calls on
// different volumes proceed in parallel.
package locks

import (
	"context"
	"fmt"
	"sync"
)

// Set holds a lock per volume. Waiting honours the context, so one stuck
// call cannot hang every later call on that volume past Docker's timeout.
type Set struct {
	mu sync.Mutex
	m  map[string]*volLock
}

type volLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// New is an empty Set.
func New() *Set { return &Set{m: map[string]*volLock{}} }

// Lock takes the volume's lock and returns its release.
func (l *Set) Lock(ctx context.Context, name string) (func(), error) {
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

func (l *Set) put(name string, vl *volLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if vl.refs--; vl.refs == 0 {
		delete(l.m, name)
	}
}

// Len counts the volumes whose lock is held or waited for: none once
// every call has returned, whatever its outcome.
func (l *Set) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
