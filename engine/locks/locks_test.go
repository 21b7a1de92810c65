package locks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocksSerialiseOneVolume(t *testing.T) {
	l := New()
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := l.Lock(context.Background(), "v")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Errorf("%d holders at once, want 1", maxInside.Load())
	}
	if len(l.m) != 0 {
		t.Errorf("%d lock entries left, want 0", len(l.m))
	}
}

func TestLocksOtherVolumeAndTimeout(t *testing.T) {
	l := New()
	unlock, _ := l.Lock(context.Background(), "a")
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	unlockB, err := l.Lock(ctx, "b")
	if err != nil {
		t.Fatalf("lock of another volume waited: %v", err)
	}
	unlockB()

	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := l.Lock(short, "a"); err == nil {
		t.Fatal("lock of a held volume succeeded")
	}
}
