package events

import (
	"context"
	"sync"
)

// followerBuffer is how many events a follower may fall behind by before
// it misses some: a slow follower never slows a call.
const followerBuffer = 256

// Bus hands every event it observes to each of its followers.
type Bus struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// NewBus is a bus with no follower.
func NewBus() *Bus { return &Bus{subs: map[chan Event]struct{}{}} }

// Observe implements Observer: ev goes to every follower with room for it.
func (b *Bus) Observe(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Follow is every event from now until ctx ends; then the channel closes.
func (b *Bus) Follow(ctx context.Context) <-chan Event {
	ch := make(chan Event, followerBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
