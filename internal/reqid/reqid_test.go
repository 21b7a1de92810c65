package reqid

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestGiven(t *testing.T) {
	for id, keep := range map[string]bool{"7f3a": true, "swarm.task-1:2": true, "": false, "a b": false, "a=b": false, "x\n": false, string(make([]byte, 65)): false} {
		if got := Given(id); (got == id) != keep || got == "" {
			t.Errorf("Given(%q) = %q, keep %v", id, got, keep)
		}
	}
}

// The ID ends the error once, however many layers hand it on, and the
// error stays what it was for errors.Is.
func TestAnnotate(t *testing.T) {
	base := errors.New("volume db1 not found")
	ctx := With(context.Background(), "7f3a")
	err := Annotate(ctx, fmt.Errorf("mount: %w", Annotate(ctx, base)))
	if got := err.Error(); got != "mount: volume db1 not found (request 7f3a)" {
		t.Errorf("Annotate twice = %q", got)
	}
	if !errors.Is(err, base) {
		t.Error("the annotated error is no longer its cause")
	}
	if Annotate(ctx, nil) != nil || Annotate(context.Background(), base) != base {
		t.Error("nil, or a context without an ID, must be left as is")
	}
}
