package events

import (
	"context"
	"testing"
)

// A follower gets the events from its start until its context ends, and
// one that does not read never blocks the observer.
func TestBusFollow(t *testing.T) {
	b := NewBus()
	b.Observe(Event{Kind: Create}) // before anyone follows
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Follow(ctx)
	_ = b.Follow(context.Background()) // never read
	for range followerBuffer + 10 {
		b.Observe(Event{Kind: Mount})
	}
	if ev := <-ch; ev.Kind != Mount {
		t.Errorf("first event followed = %s, want mount", ev.Kind)
	}
	cancel()
	n := 1
	for range ch {
		n++
	}
	if n != followerBuffer {
		t.Errorf("followed %d events, want the %d that fit its buffer", n, followerBuffer)
	}
}
