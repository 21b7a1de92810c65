package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/fence"
	"github.com/rexray/rexray/engine/ledger"
)

// What each kind of hold needs of a volume on this host. Every hold keeps
// the device attached; most use the filesystem mounted at the engine's
// path too, and one kind (a CSI block publication) reads and writes the
// device itself, which no filesystem mounted on it may share: the two
// would corrupt each other. The holds of one volume are counted together,
// whichever front door took them, and the last one out releases it.

// usesFilesystem tells whether h uses the volume's mounted filesystem;
// the other kinds hold only its device.
func usesFilesystem(h ledger.Hold) bool {
	switch h.Kind {
	case ledger.OperatorAttach, ledger.CSIStage, ledger.CSIBlock:
		return false
	}
	return true
}

// writesDevice tells whether h reads and writes the device itself.
func writesDevice(h ledger.Hold) bool { return h.Kind == ledger.CSIBlock }

// deviceOnly tells whether no hold of holds uses the filesystem, and
// there is at least one.
func deviceOnly(holds []ledger.Hold) bool {
	return len(holds) > 0 && !slices.ContainsFunc(holds, usesFilesystem)
}

// ErrInUse is matched (errors.Is) by the refusal of a call that would take
// a volume from under what holds it on this host, or share it with a
// holder it cannot be shared with.
var ErrInUse = errors.New("volume in use")

type inUse struct{ msg string }

func (e inUse) Error() string        { return e.msg }
func (e inUse) Is(target error) bool { return target == ErrInUse }

func inUseError(format string, a ...any) error { return inUse{fmt.Sprintf(format, a...)} }

// sharable refuses hold h beside the volume's other holds when one of them
// writes the device and another uses the filesystem.
func sharable(name string, h ledger.Hold, holds []ledger.Hold) error {
	others := slices.DeleteFunc(slices.Clone(holds), func(o ledger.Hold) bool { return o == h })
	switch {
	case usesFilesystem(h):
		if i := slices.IndexFunc(others, writesDevice); i >= 0 {
			return inUseError("volume %s is held by %s, which writes its device: its filesystem cannot be mounted meanwhile", name, others[i])
		}
	case writesDevice(h):
		if i := slices.IndexFunc(others, usesFilesystem); i >= 0 {
			return inUseError("volume %s is held by %s, which uses its filesystem: its device cannot be handed out meanwhile", name, others[i])
		}
	}
	return nil
}

// AttachFor attaches a volume to this host for hold h, a hold of its
// device only (a CSI staging or block publication), and returns the
// device. The volume stays attached until the last of its holds is
// released (Unmount). A hold that writes the device is refused while
// another uses the filesystem, and the other way round.
func (e *Engine) AttachFor(ctx context.Context, name string, h ledger.Hold) (string, error) {
	if usesFilesystem(h) {
		return "", fmt.Errorf("attach volume %s for %s: %w: that hold uses the filesystem, which Mount mounts", name, h, ledger.ErrInvalidHold)
	}
	ctx, done, err := e.begin(ctx, "attach", name)
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	defer done()
	// The driver's error names the volume and the step already.
	return e.attach(ctx, name, h)
}

// attach attaches a volume for h and records h.
func (e *Engine) attach(ctx context.Context, name string, h ledger.Hold) (string, error) {
	v, err := e.lookup(ctx, name)
	if err != nil {
		return "", err
	}
	if err := e.canHold(name, h); err != nil {
		return "", err
	}
	if err := e.canUnlock(v); err != nil {
		return "", err
	}
	drv := e.serviceOf(v).Driver
	dev, err := e.attachDevice(ctx, drv, v, h.String())
	if err != nil {
		return "", fence.HowToTakeOver(err)
	}
	// An encrypted volume's device is its mapping, for a holder of the
	// device as for the filesystem.
	if dev, _, err = e.unlock(ctx, drv, v, dev); err != nil {
		if holds, lerr := e.led.Holds(name); lerr == nil && len(holds) == 0 {
			e.releaseLogged(ctx, name)
		}
		return "", err
	}
	if err := e.record(ctx, name, h); err != nil {
		return "", err
	}
	return dev, nil
}

// canHold refuses h beside a hold of the volume it cannot share it with.
func (e *Engine) canHold(name string, h ledger.Hold) error {
	holds, err := e.led.Holds(name)
	if err != nil {
		return err
	}
	return sharable(name, h, holds)
}

// record records h on a volume the call has attached (and mounted) for
// it. When that fails and nothing else holds the volume, the volume is
// released: it would stay attached for nobody.
func (e *Engine) record(ctx context.Context, name string, h ledger.Hold) error {
	if _, _, err := e.led.AddHold(name, h); err != nil {
		if holds, lerr := e.led.Holds(name); lerr == nil && len(holds) == 0 {
			e.releaseLogged(ctx, name)
		}
		return err
	}
	return nil
}

// Held maps every volume something holds on this host to its holds.
func (e *Engine) Held(ctx context.Context) (map[string][]ledger.Hold, error) {
	if err := e.waitReady(ctx); err != nil {
		return nil, err
	}
	counts, err := e.led.HeldVolumes()
	if err != nil {
		return nil, err
	}
	held := make(map[string][]ledger.Hold, len(counts))
	for name := range counts {
		if held[name], err = e.led.Holds(name); err != nil {
			return nil, err
		}
	}
	return held, nil
}

// Ready tells whether the engine has restored its state and takes calls.
func (e *Engine) Ready() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// Capable tells whether the driver of every service has capability T: a
// front door offers what every volume it serves can do.
func Capable[T any](e *Engine) bool {
	for _, s := range e.services {
		if _, ok := s.Driver.(T); !ok {
			return false
		}
	}
	return true
}

// Any tells whether some service's driver has capability T.
func Any[T any](e *Engine) bool {
	for _, s := range e.services {
		if _, ok := s.Driver.(T); ok {
			return true
		}
	}
	return false
}

// Capacity is what the service ("" for the default) can still hold, in
// bytes, as its driver tells (drivers.Capacitor).
func (e *Engine) Capacity(ctx context.Context, service string) (int64, error) {
	svc, err := e.service(service)
	if err != nil {
		return 0, drivers.Invalid("%v", err)
	}
	c, err := drivers.As[drivers.Capacitor](svc.Driver, drivers.CapCapacity)
	if err != nil {
		return 0, fmt.Errorf("capacity of service %s: %w", svc.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	n, err := c.Capacity(ctx)
	if err != nil {
		return 0, fmt.Errorf("capacity of service %s: %w", svc.Name, err)
	}
	return n, nil
}
