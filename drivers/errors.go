package drivers

import (
	"errors"
	"fmt"
	"time"
)

// The errors drivers return (wrapped), for the engine and the front doors
// to test with errors.Is.
var (
	// ErrNotFound: the volume does not exist.
	ErrNotFound = errors.New("volume not found")
	// ErrExists: a volume of that name exists.
	ErrExists = errors.New("volume already exists")
	// ErrSnapshotNotFound: the snapshot does not exist.
	ErrSnapshotNotFound = errors.New("snapshot not found")
	// ErrSnapshotExists: a snapshot of that name exists.
	ErrSnapshotExists = errors.New("snapshot already exists")
	// ErrInvalid: an argument is not one the driver accepts; the error
	// says which and what is accepted.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnsupported: the driver lacks a capability (see UnsupportedError).
	ErrUnsupported = errors.ErrUnsupported
	// ErrNoRoom: the platform has not the room a new volume needs.
	ErrNoRoom = errors.New("not enough room on the platform")
	// ErrHeld: another host holds the volume (see HeldError).
	ErrHeld = errors.New("held by another host")
	// ErrHoldLapsing: a Watcher's reason for giving up a volume whose hold
	// it could not renew (the platform stopped answering), before another
	// host may take it. Its writes are stopped at once, with no flush that
	// would wait for that platform.
	ErrHoldLapsing = errors.New("giving it up before another host may take it")
)

// Invalid is an ErrInvalid saying what was wrong.
func Invalid(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// UnsupportedError is the answer of a driver that lacks a capability.
type UnsupportedError struct {
	Driver     string
	Capability string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the %s driver does not support %s", e.Driver, e.Capability)
}

// Is makes an UnsupportedError an ErrUnsupported.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// HeldError is Attach's (or Remove's) answer for a volume another host
// holds. The engine adds how to take it over, in the plugin's settings.
type HeldError struct {
	Volume string
	// Holder names the host that holds it, as the platform knows it
	// ("host h1", "machine vm-a (uuid)").
	Holder string
	// Until is when the holder's lease runs out unless it renews it; zero
	// where the hold lasts until it is released.
	Until time.Time
	// Takeover says what taking the volume over does to the holder, if
	// more than losing it.
	Takeover string
}

func (e *HeldError) Error() string {
	msg := fmt.Sprintf("volume %s is attached to %s", e.Volume, e.Holder)
	if !e.Until.IsZero() {
		msg += fmt.Sprintf(" (its lease runs until %s unless that host renews it)", e.Until.UTC().Format(time.RFC3339))
	}
	return msg
}

// Is makes a HeldError an ErrHeld.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }
