// Package platform asks storage platforms questions bounded in time: a
// platform that does not answer within its wait leaves the engine's catalogue
// to answer for the volumes it knows, since dockerd forgets a volume whose
// Get fails.
package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"

	"github.com/rexray/rexray/drivers"
)

// DefaultWait bounds each question put to a storage platform by Get, List
// and the lookups of Create, Mount and Remove, unless the Asker is given
// another bound (REXRAY_PLATFORM_WAIT).
const DefaultWait = 5 * time.Second

// Asker asks the services, and logs a service that stops answering once
// per outage, not once per call.
type Asker struct {
	log     logrus.FieldLogger
	wait    time.Duration
	calls   singleflight.Group // one call in flight per question
	mu      sync.Mutex
	failing map[string]bool // service → its last question failed
}

// NewAsker is an Asker that logs to log and waits wait for each answer
// (DefaultWait if wait is 0).
func NewAsker(log logrus.FieldLogger, wait time.Duration) *Asker {
	if wait <= 0 {
		wait = DefaultWait
	}
	return &Asker{log: log, wait: wait, failing: make(map[string]bool)}
}

// Ask asks service the question key, running fn once for every caller
// asking the same key at the same time. fn gets its own context bounded
// by the Asker's wait, so one caller giving up does not fail the others; a
// caller waits at most until its ctx ends or the wait has passed. A driver blocked in
// a call that ignores its context (a hung NFS store) thus holds one
// goroutine per question, not one per call. A failure other than
// drivers.ErrNotFound matches ErrNoAnswer.
func Ask[T any](ctx context.Context, a *Asker, service, key string, fn func(context.Context) (T, error)) (T, error) {
	v, err := ask(ctx, a, service+"\x00"+key, fn)
	a.answered(service, err)
	if err != nil && !errors.Is(err, drivers.ErrNotFound) {
		err = &noAnswer{service, err}
	}
	return v, err
}

func ask[T any](ctx context.Context, a *Asker, key string, fn func(context.Context) (T, error)) (T, error) {
	ch := a.calls.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.wait)
		defer cancel()
		return fn(fctx)
	})
	timer := time.NewTimer(a.wait)
	defer timer.Stop()
	var zero T
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		return res.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-timer.C:
		return zero, fmt.Errorf("no answer within %s (REXRAY_PLATFORM_WAIT): %w", a.wait, context.DeadlineExceeded)
	}
}

// ErrNoAnswer marks an error of a platform that failed to answer (as
// opposed to one that answered "no such volume").
var ErrNoAnswer = errors.New("storage platform did not answer")

type noAnswer struct {
	service string
	err     error
}

func (e *noAnswer) Error() string {
	return fmt.Sprintf("service %s: %v", e.service, e.err)
}

func (e *noAnswer) Unwrap() []error { return []error{ErrNoAnswer, e.err} }

// answered records how a service answered and logs the change: the first
// failure after an answer, and the first answer after failures.
func (a *Asker) answered(service string, err error) {
	failed := err != nil && !errors.Is(err, drivers.ErrNotFound)
	a.mu.Lock()
	was := a.failing[service]
	a.failing[service] = failed
	a.mu.Unlock()
	switch {
	case failed && !was:
		a.log.WithField("service", service).Warnf("storage platform does not answer (%v): Get and List answer from this host's catalogue until it does", err)
	case !failed && was:
		a.log.WithField("service", service).Info("storage platform answers again")
	}
}

// Names lists one driver's names, sorted, cheaply where the driver
// can.
func Names(ctx context.Context, d drivers.Driver) ([]string, error) {
	var names []string
	if n, ok := d.(drivers.NameLister); ok {
		var err error
		if names, err = n.Names(ctx); err != nil {
			return nil, err
		}
	} else {
		vols, err := d.List(ctx)
		if err != nil {
			return nil, err
		}
		names = make([]string, len(vols))
		for i, v := range vols {
			names[i] = v.Name
		}
	}
	if !slices.IsSorted(names) {
		slices.Sort(names)
	}
	return names, nil
}

// Union merges sorted lists of names into one, sorted, each name once. It
// may reuse a list given, which the caller gives up.
func Union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		switch {
		case len(l) == 0:
		case out == nil:
			out = slices.Compact(l)
		default:
			out = merge(out, l)
		}
	}
	return out
}

// merge merges two sorted lists, each name once.
func merge(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var next string
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] <= b[0]:
			next, a = a[0], a[1:]
		default:
			next, b = b[0], b[1:]
		}
		if len(out) == 0 || out[len(out)-1] != next {
			out = append(out, next)
		}
	}
	return out
}
