package platform

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
)

func TestUnionIsSortedWithEachNameOnce(t *testing.T) {
	got := Union([]string{"a", "c", "e"}, nil, []string{"b", "c", "f"}, []string{"a"})
	if want := []string{"a", "b", "c", "e", "f"}; !slices.Equal(got, want) {
		t.Errorf("Union = %v, want %v", got, want)
	}
}

func TestNamesAreTheDriversSorted(t *testing.T) {
	d := memdriver.NewStore().Driver("a")
	for _, n := range []string{"zeta", "alpha", "mid"} {
		if _, err := d.Create(context.Background(), n, drivers.CreateOptions{Size: 1 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Names(context.Background(), d)
	if want := []string{"alpha", "mid", "zeta"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Names = %v, %v; want %v", got, err, want)
	}
}

// A platform that fails is told apart from one that answers "no such
// volume", and its outage is logged once, not once per question.
func TestAFailureIsNoAnswerAndLoggedOnce(t *testing.T) {
	log, hook := test.NewNullLogger()
	a := NewAsker(log, 0)
	fail := func(context.Context) (int, error) { return 0, errors.New("store unreachable") }
	for range 3 {
		if _, err := Ask(context.Background(), a, "s", "q", fail); !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("a failing platform's answer: %v, want ErrNoAnswer", err)
		}
	}
	missing := func(context.Context) (int, error) { return 0, drivers.ErrNotFound }
	if _, err := Ask(context.Background(), a, "s", "q", missing); errors.Is(err, ErrNoAnswer) || !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("a platform that answered not found: %v", err)
	}
	if n := len(hook.AllEntries()); n != 2 {
		t.Errorf("%d log lines for one outage and its end, want 2", n)
	}
}

// The Asker waits the bound it was given, not a fixed one: a platform
// slower than the bound is no answer, one within it answers.
func TestTheWaitIsTheAskersOwn(t *testing.T) {
	log, _ := test.NewNullLogger()
	slow := func(ctx context.Context) (int, error) {
		select {
		case <-time.After(300 * time.Millisecond):
			return 7, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	_, err := Ask(context.Background(), NewAsker(log, 50*time.Millisecond), "s", "q", slow)
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "50ms") {
		t.Errorf("a platform slower than a 50ms wait: %v, want no answer within 50ms", err)
	}
	if v, err := Ask(context.Background(), NewAsker(log, 5*time.Second), "s", "q", slow); err != nil || v != 7 {
		t.Errorf("the same platform within a 5s wait: %v, %v; want its answer 7", v, err)
	}
}
