// Package events names what the engine does to volumes, one Event each,
// for whoever follows it: the metrics count them, `rexray events` shows
// them. An Observer is called synchronously from the call that did it, so
// it must return at once.
package events

import "time"

// Kind is what happened.
type Kind string

// The kinds of event.
const (
	Create  Kind = "create"  // a volume was created (Bytes: its size)
	Attach  Kind = "attach"  // its device was attached to this host
	Mount   Kind = "mount"   // a hold on its filesystem was taken (Hold)
	Unmount Kind = "unmount" // that hold was released (Hold)
	Detach  Kind = "detach"  // its device was detached from this host
	Remove  Kind = "remove"  // the volume was removed
	// Preempt: this host took a volume another host held (From).
	Preempt Kind = "preempt"
	// LeaseLost: this host lost its hold (another host preempted it, or
	// the lease could not be renewed), why in Detail; a fence follows.
	LeaseLost Kind = "lease-lost"
	// Fence: this host was cut off a volume it lost.
	Fence Kind = "fence"
	// StaleHold: holds that nothing holds any more were forgotten
	// (Hold: which; Detail: where they were found).
	StaleHold Kind = "stale-hold"
	// Copy: a volume was made a copy of a volume or a snapshot (From),
	// Bytes copied in Seconds.
	Copy Kind = "copy"
	// Snapshot: a snapshot (Detail: its name) of the volume was taken,
	// Bytes in Seconds.
	Snapshot Kind = "snapshot"
	// Catalogue: a platform did not answer, and this host's catalogue
	// answered for it (Service; Volume when one was asked for).
	Catalogue Kind = "catalogue"
)

// Kinds lists every kind, in the order above.
func Kinds() []Kind {
	return []Kind{Create, Attach, Mount, Unmount, Detach, Remove, Preempt, LeaseLost, Fence, StaleHold, Copy, Snapshot, Catalogue}
}

// Event is one thing the engine did.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Volume  string    `json:"volume,omitempty"`
	Service string    `json:"service,omitempty"`
	// Req is the request ID of the call that did it.
	Req     string  `json:"req,omitempty"`
	Hold    string  `json:"hold,omitempty"`
	From    string  `json:"from,omitempty"`
	Bytes   int64   `json:"bytes,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	Detail  string  `json:"detail,omitempty"`
}

// Observer is told of every event.
type Observer interface {
	Observe(Event)
}
