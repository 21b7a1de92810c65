package drivertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/drivertest"
	"github.com/rexray/rexray/drivers/memdriver"
)

// A driver with the core alone passes: each capability it lacks is
// checked to be refused, not skipped.
func TestCoreOnlyDriverPasses(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{Hosts: func(t *testing.T) (a, b drivers.Driver) {
		s := memdriver.NewStore()
		// The embedded interface hides every capability.
		return coreOnly{s.Driver("a")}, coreOnly{s.Driver("b")}
	}})
}

type coreOnly struct{ drivers.Driver }

// Create refuses a copy of a snapshot, as a driver without snapshots does.
func (d coreOnly) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if opts.FromSnapshot != "" {
		return drivers.Volume{}, &drivers.UnsupportedError{Driver: d.Name(), Capability: drivers.CapSnapshots}
	}
	return d.Driver.Create(ctx, name, opts)
}

// broken errs where the contract is easiest to miss: a taken name, an
// unchecked name, a hold reported as a plain error.
type broken struct{ *memdriver.Driver }

func (d broken) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	v, err := d.Driver.Create(ctx, name, opts)
	if errors.Is(err, drivers.ErrExists) {
		return v, errors.New("that name is taken")
	}
	return v, err
}

func (d broken) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	if drivers.ValidateName(name) != nil {
		return drivers.Volume{}, drivers.ErrNotFound
	}
	return d.Driver.Inspect(ctx, name)
}

func (d broken) Attach(ctx context.Context, name string, force bool) (string, error) {
	dev, err := d.Driver.Attach(ctx, name, force)
	if errors.Is(err, drivers.ErrHeld) {
		return "", errors.New(err.Error())
	}
	return dev, err
}

// The suite fails a driver that breaks the contract, in the subtests that
// check what it breaks, and passes it in the others. It runs in a child
// test process, whose failure is the expected outcome.
func TestBrokenDriverFails(t *testing.T) {
	if os.Getenv("DRIVERTEST_BROKEN") == "1" {
		drivertest.Run(t, drivertest.Harness{Hosts: func(t *testing.T) (a, b drivers.Driver) {
			s := memdriver.NewStore()
			return broken{s.Driver("a")}, broken{s.Driver("b")}
		}})
		return
	}
	// /proc/self/exe, not os.Args[0]: the test binary may run as a user
	// that cannot reach the folder holding it.
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestBrokenDriverFails$", "-test.v")
	cmd.Env = append(os.Environ(), "DRIVERTEST_BROKEN=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the suite on a broken driver: %v, want it to fail; output:\n%s", err, out)
	}
	for _, want := range []string{
		"--- FAIL: TestBrokenDriverFails/CreateTakenName",
		"--- FAIL: TestBrokenDriverFails/InvalidNames",
		"--- FAIL: TestBrokenDriverFails/HeldByAnotherHost",
		"--- PASS: TestBrokenDriverFails/Create ",
		"--- PASS: TestBrokenDriverFails/Snapshotter",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the suite's output lacks %q:\n%s", want, out)
		}
	}
}
