package engine

import (
	"context"
	"errors"
	"slices"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
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
		return c, nil
	}
	e.emit(ctx, events.Event{Kind: events.Catalogue, Volume: name, Service: c.Service, Detail: err.Error()})
	return c, nil
}

// listNames is every name the platforms hold, sorted, each service's
// listing bounded by the platform wait. A service that does not answer is stood
// in for by the catalogue; fromCatalogue tells which services did not
// answer.
func (e *Engine) listNames(ctx context.Context) (names []string, fromCatalogue []string) {
	var lists [][]string
	for _, s := range e.services {
		got, err := platform.Ask(ctx, e.platform, s.Name, "names", func(ctx context.Context) ([]string, error) {
			return platform.Names(ctx, s.Driver)
		})
		if err != nil {
			fromCatalogue = append(fromCatalogue, s.Name)
			e.emit(ctx, events.Event{Kind: events.Catalogue, Service: s.Name, Detail: err.Error()})
			continue
		}
		// Callers at the same moment share got; union may reuse its list.
		lists = append(lists, slices.Clone(got))
	}
	return platform.Union(lists...), fromCatalogue
}
