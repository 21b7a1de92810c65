package engine

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

// platformWait bounds each question put to a storage platform by Get, List
// and the lookups of Create, Mount and Remove. A platform that does not
// answer within it leaves the catalogue to answer for the volumes it knows:
// dockerd forgets a volume whose Get fails.
const platformWait = 5 * time.Second

// platform asks the services, each question bounded by platformWait, and
// logs a service that stops answering once per outage, not once per call.
type platform struct {
	log     logrus.FieldLogger
	calls   singleflight.Group // one call in flight per question
	mu      sync.Mutex
	failing map[string]bool // service → its last question failed
}

func newPlatform(log logrus.FieldLogger) *platform {
	return &platform{log: log, failing: make(map[string]bool)}
}

// ask runs fn once for every caller asking the same key at the same time.
// fn gets its own context bounded by platformWait, so one caller giving up
// does not fail the others; a caller waits at most until its ctx ends or
// platformWait has passed. A driver blocked in a call that ignores its
// context (a hung NFS store) thus holds one goroutine per question, not one
// per call.
func ask[T any](ctx context.Context, p *platform, key string, fn func(context.Context) (T, error)) (T, error) {
	ch := p.calls.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), platformWait)
		defer cancel()
		return fn(fctx)
	})
	timer := time.NewTimer(platformWait)
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
		return zero, fmt.Errorf("no answer within %s: %w", platformWait, context.DeadlineExceeded)
	}
}

// ErrPlatform marks an error of a platform that failed to answer (as
// opposed to one that answered "no such volume").
var ErrPlatform = errors.New("storage platform did not answer")

type platformError struct {
	service string
	err     error
}

func (e *platformError) Error() string {
	return fmt.Sprintf("service %s: %v", e.service, e.err)
}

func (e *platformError) Unwrap() []error { return []error{ErrPlatform, e.err} }

// answered records how a service answered and logs the change: the first
// failure after an answer, and the first answer after failures.
func (p *platform) answered(service string, err error) {
	failed := err != nil && !errors.Is(err, drivers.ErrNotFound)
	p.mu.Lock()
	was := p.failing[service]
	p.failing[service] = failed
	p.mu.Unlock()
	switch {
	case failed && !was:
		p.log.WithField("service", service).Warnf("storage platform does not answer (%v): Get and List answer from this host's catalogue until it does", err)
	case !failed && was:
		p.log.WithField("service", service).Info("storage platform answers again")
	}
}

// inspect asks one service about one volume.
func (e *Engine) inspect(ctx context.Context, s Service, name string) (drivers.Volume, error) {
	v, err := ask(ctx, e.platform, "inspect\x00"+s.Name+"\x00"+name, func(ctx context.Context) (drivers.Volume, error) {
		return s.Driver.Inspect(ctx, name)
	})
	e.platform.answered(s.Name, err)
	switch {
	case err == nil:
		v.Service = s.Name
		return v, nil
	case errors.Is(err, drivers.ErrNotFound):
		return v, err
	}
	return v, &platformError{s.Name, err}
}

// find asks the services about a volume: the one the catalogue names
// first, then the others, since a name is unique across services.
func (e *Engine) find(ctx context.Context, name string, first Service) (drivers.Volume, error) {
	var failed error
	for _, s := range e.servicesFrom(first) {
		v, err := e.inspect(ctx, s, name)
		switch {
		case err == nil:
			return v, nil
		case !errors.Is(err, drivers.ErrNotFound):
			failed = errors.Join(failed, err)
		}
	}
	if failed != nil {
		return drivers.Volume{}, failed
	}
	return drivers.Volume{}, drivers.ErrNotFound
}

// servicesFrom is every service, first before the others.
func (e *Engine) servicesFrom(first Service) []Service {
	all := make([]Service, 0, len(e.services))
	if first.Driver != nil {
		all = append(all, first)
	}
	for _, s := range e.services {
		if s.Name != first.Name || first.Driver == nil {
			all = append(all, s)
		}
	}
	return all
}

// lookup finds a volume on the platforms: what this host's catalogue knows
// is only a memory. A volume the platforms say is gone is not found, unless
// this host has it mounted: a running container's volume is not given up
// while it runs. A platform that does not answer leaves the catalogue to
// answer for a volume it knows.
func (e *Engine) lookup(ctx context.Context, name string) (drivers.Volume, error) {
	c, known, err := e.led.Volume(name)
	if err != nil {
		return c, err
	}
	first := Service{}
	if known {
		first = e.serviceOf(c)
	}
	v, err := e.find(ctx, name, first)
	switch {
	case err == nil:
		if err := e.led.SyncVolume(v); err != nil {
			return v, err
		}
		return v, nil
	case !known:
		return v, err
	case errors.Is(err, drivers.ErrNotFound):
		if ids, merr := e.led.Holds(name); merr != nil || len(ids) == 0 {
			return v, err
		}
		e.logFor(ctx, name).Warn("mounted here, but its storage platform no longer has it: answering from the catalogue while it is mounted")
	}
	return c, nil
}

// listNames is every name the platforms hold, sorted, each service's
// listing bounded by platformWait. A service that does not answer is stood
// in for by the catalogue; fromCatalogue tells which services did not
// answer.
func (e *Engine) listNames(ctx context.Context) (names []string, fromCatalogue []string) {
	var lists [][]string
	for _, s := range e.services {
		got, err := ask(ctx, e.platform, "names\x00"+s.Name, func(ctx context.Context) ([]string, error) {
			return serviceNames(ctx, s.Driver)
		})
		e.platform.answered(s.Name, err)
		if err != nil {
			fromCatalogue = append(fromCatalogue, s.Name)
			continue
		}
		// Callers at the same moment share got; union may reuse its list.
		lists = append(lists, slices.Clone(got))
	}
	return union(lists...), fromCatalogue
}

// serviceNames lists one driver's names, sorted, cheaply where the driver
// can.
func serviceNames(ctx context.Context, d drivers.Driver) ([]string, error) {
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

// union merges sorted lists of names into one, sorted, each name once. It
// may reuse a list given, which the caller gives up.
func union(lists ...[]string) []string {
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
