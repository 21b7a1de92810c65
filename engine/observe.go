package engine

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/internal/reqid"
)

// Observe has o told of every event from now on. Call it before Run.
func (e *Engine) Observe(o events.Observer) { e.observers = append(e.observers, o) }

// emit tells the observers of ev, done now by the call in ctx.
func (e *Engine) emit(ctx context.Context, ev events.Event) {
	if len(e.observers) == 0 {
		return
	}
	ev.Time = time.Now().UTC()
	ev.Req = reqid.From(ctx)
	for _, o := range e.observers {
		o.Observe(ev)
	}
}

// attachDevice attaches v's device to this host, preempting another host
// when the settings say so, and tells of the attach, and of the preempt
// when v was attached to another host.
func (e *Engine) attachDevice(ctx context.Context, drv drivers.Driver, v drivers.Volume, hold string) (string, error) {
	holders := v.Fields["attachedTo"]
	dev, err := drv.Attach(ctx, v.Name, e.cfg.Preempting())
	if err != nil {
		return "", err
	}
	svc := e.serviceOf(v).Name
	if holders != "" && e.cfg.Preempting() && !slices.Contains(strings.Split(holders, ","), e.instance) {
		e.emit(ctx, events.Event{Kind: events.Preempt, Volume: v.Name, Service: svc, From: holders})
	}
	e.emit(ctx, events.Event{Kind: events.Attach, Volume: v.Name, Service: svc, Hold: hold, Detail: dev})
	return dev, nil
}

// emitStale tells of the holds of a volume that restore is forgetting.
func (e *Engine) emitStale(ctx context.Context, name, where string) {
	holds, err := e.led.Holds(name)
	if err == nil && len(holds) > 0 {
		e.emit(ctx, events.Event{Kind: events.StaleHold, Volume: name, Hold: holdList(holds), Detail: where})
	}
}

// holdList is holds as events give them: comma-separated keys.
func holdList(holds []ledger.Hold) string {
	keys := make([]string, len(holds))
	for i, h := range holds {
		keys[i] = h.Key()
	}
	return strings.Join(keys, ",")
}
