package engine

import (
	"context"
	"slices"
	"strings"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount"
)

// Stats is the engine's state at one moment, for the metrics.
type Stats struct {
	Services []ServiceStats
	// Holds counts this host's holds by kind.
	Holds map[ledger.Kind]int
	// Mounted is every volume mounted here, with its filesystem's use.
	Mounted []MountUsage
}

// ServiceStats is one service's part of Stats.
type ServiceStats struct {
	Service string
	// Known counts the volumes this host's catalogue holds; Attached
	// those something on this host holds.
	Known, Attached int
	// Leases are the driver's lease counts; nil for a driver that keeps
	// no leases (drivers.LeaseCounter).
	Leases *drivers.LeaseCounts
}

// MountUsage is a mounted volume's filesystem use.
type MountUsage struct {
	Volume, Service string
	Usage           mount.Usage
}

// usager is a Mounter that tells a mounted volume's use (package mount's).
type usager interface {
	Usage(name string) (mount.Usage, error)
}

// Stats reads the catalogue, the ledger and the mounts; it asks no
// platform, so a scrape never waits on one.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	names, err := e.led.VolumeNames()
	if err != nil {
		return Stats{}, err
	}
	held, err := e.led.HeldVolumes()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Holds: map[ledger.Kind]int{}}
	known, attached := map[string]int{}, map[string]int{}
	serviceOf := map[string]string{}
	for _, name := range names {
		v, ok, err := e.led.Volume(name)
		if err != nil {
			return Stats{}, err
		}
		if ok {
			svc := e.serviceOf(v).Name
			serviceOf[name] = svc
			known[svc]++
		}
	}
	for name := range held {
		holds, err := e.led.Holds(name)
		if err != nil {
			return Stats{}, err
		}
		for _, h := range holds {
			st.Holds[h.Kind]++
		}
		if len(holds) > 0 {
			attached[serviceOf[name]]++
		}
	}
	for _, s := range e.services {
		ss := ServiceStats{Service: s.Name, Known: known[s.Name], Attached: attached[s.Name]}
		if lc, ok := s.Driver.(drivers.LeaseCounter); ok {
			c := lc.LeaseCounts()
			ss.Leases = &c
		}
		st.Services = append(st.Services, ss)
	}
	st.Mounted = e.mountUsage(serviceOf)
	return st, nil
}

// mountUsage is the use of every volume mounted here, by name.
func (e *Engine) mountUsage(serviceOf map[string]string) []MountUsage {
	u, ok := e.mnt.(usager)
	if !ok {
		return nil
	}
	mounted, err := e.mnt.Mounted()
	if err != nil {
		return nil
	}
	var out []MountUsage
	for name := range mounted {
		if usage, err := u.Usage(name); err == nil {
			out = append(out, MountUsage{Volume: name, Service: serviceOf[name], Usage: usage})
		}
	}
	slices.SortFunc(out, func(a, b MountUsage) int { return strings.Compare(a.Volume, b.Volume) })
	return out
}
