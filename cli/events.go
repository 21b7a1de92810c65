package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rexray/rexray/api"
)

// events follows what the running plugin does, one line an event, until
// interrupted.
func (c *Command) events(ctx context.Context, args []string) error {
	f := newFlags("events", c.Stderr)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	b, done, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	r, ok := b.(*remote)
	if !ok {
		return errors.New("rexray events follows a running plugin, and none holds the ledger (REXRAY_STATEDIR): start the plugin, or set REXRAY_HOST to its socket")
	}
	enc := json.NewEncoder(c.Stdout)
	return r.cli.Events(ctx, func(ev api.Event) error {
		if f.format == "json" {
			return enc.Encode(ev)
		}
		_, err := fmt.Fprintln(c.Stdout, eventLine(ev))
		return err
	})
}

// eventLine is an event as one line: time, kind, then its fields.
func eventLine(ev api.Event) string {
	parts := []string{ev.Time.Format(time.RFC3339), string(ev.Kind)}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("volume", ev.Volume)
	add("service", ev.Service)
	add("hold", ev.Hold)
	add("from", ev.From)
	if ev.Bytes > 0 {
		add("bytes", fmt.Sprint(ev.Bytes))
	}
	if ev.Seconds > 0 {
		add("seconds", fmt.Sprintf("%.3f", ev.Seconds))
	}
	add("req", ev.Req)
	if ev.Detail != "" {
		add("detail", fmt.Sprintf("%q", ev.Detail))
	}
	return strings.Join(parts, " ")
}
