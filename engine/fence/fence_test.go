package fence

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
)

// steps records what each side was asked, in order.
type steps struct{ done []string }

type fencer struct {
	drivers.Driver
	s   *steps
	err error
}

func (f fencer) Fence(ctx context.Context, name string) error {
	f.s.done = append(f.s.done, "cut "+name)
	return f.err
}

func (f fencer) Detach(ctx context.Context, name string) error {
	f.s.done = append(f.s.done, "detach "+name)
	return f.Driver.Detach(ctx, name)
}

type filesystem struct {
	s   *steps
	err error
}

func (f filesystem) Fence(ctx context.Context, name string) error {
	f.s.done = append(f.s.done, "shut down "+name)
	return f.err
}

func attached(t *testing.T) drivers.Driver {
	t.Helper()
	d := memdriver.NewStore().Driver("a")
	ctx := context.Background()
	if _, err := d.Create(ctx, "v", drivers.CreateOptions{Size: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Attach(ctx, "v", false); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTheStepsRunInTheirOrderAndAFailureStopsNone(t *testing.T) {
	ctx := context.Background()
	s := &steps{}
	drv := fencer{Driver: attached(t), s: s, err: errors.New("cluster unreachable")}
	cutErr := Cut(ctx, drv, "v")
	err := ShutDown(ctx, drv, filesystem{s: s, err: errors.New("not mounted")}, "v")
	if want := []string{"cut v", "shut down v", "detach v"}; !slices.Equal(s.done, want) {
		t.Errorf("steps %v, want %v", s.done, want)
	}
	if cutErr == nil || err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("errors %v and %v: want both failures told", cutErr, err)
	}
	if v, _ := drv.Inspect(ctx, "v"); v.Device != "" {
		t.Error("the device is still attached after the fence")
	}
}

func TestADriverWithoutFencerIsNotCut(t *testing.T) {
	if err := Cut(context.Background(), attached(t), "v"); err != nil {
		t.Errorf("cut of a driver that cannot: %v", err)
	}
}

func TestHowToTakeOverNamesTheSettings(t *testing.T) {
	held := &drivers.HeldError{Volume: "v", Holder: "host h1", Until: time.Now(), Takeover: "fences the holder"}
	err := HowToTakeOver(held)
	for _, want := range []string{"volume v is attached to host h1", "REXRAY_PREEMPT=true", "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PREEMPT=true", "which fences the holder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if !errors.Is(err, drivers.ErrHeld) {
		t.Error("the error is no longer a held error")
	}
	other := errors.New("disk on fire")
	if HowToTakeOver(other) != other {
		t.Error("an error that is not a hold was changed")
	}
}
