package engine

import (
	"context"
	"errors"
	"slices"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/platform"
)

// inspect asks one service about one volume.
func (e *Engine) inspect(ctx context.Context, s Service, name string) (drivers.Volume, error) {
	v, err := platform.Ask(ctx, e.platform, s.Name, "inspect\x00"+name, func(ctx context.Context) (drivers.Volume, error) {
		return s.Driver.Inspect(ctx, name)
	})
	if err == nil {
		v.Service = s.Name
	}
	return v, err
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
// listing bounded by platform.Wait. A service that does not answer is stood
// in for by the catalogue; fromCatalogue tells which services did not
// answer.
func (e *Engine) listNames(ctx context.Context) (names []string, fromCatalogue []string) {
	var lists [][]string
	for _, s := range e.services {
		got, err := platform.Ask(ctx, e.platform, s.Name, "names", func(ctx context.Context) ([]string, error) {
			return serviceNames(ctx, s.Driver)
		})
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
