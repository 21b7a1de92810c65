// Package cli is the rexray command: the plugin's daemon (`rexray serve`)
// and the operator's commands, which act on the same store and ledger.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/rexray/rexray/drivers"
)

// Command runs one rexray command line.
type Command struct {
	Registry drivers.Registry
	Version  string
	Stdout   io.Writer
	Stderr   io.Writer
}

const usage = `usage: rexray [command]

  serve                        serve Docker's volume plugin API (the default)
  version                      print the version
  env [--format json]          the effective settings and where each came from
  volume ls|inspect|create|rm|attach|detach|mount|unmount [NAME] [--format json]
  volume resize NAME SIZE      grow a volume, in use or not (SIZE as -o size: 2, 512MiB)
  snapshot ls | create VOLUME SNAPSHOT | rm SNAPSHOT [--format json]
  events [--format json]       follow what the running plugin does, one line
                               an event, until interrupted
  plugin upgrade [--grant-all-permissions] [--skip-remote-check] PLUGIN [REMOTE]
                               docker plugin upgrade that keeps mount sources,
                               device paths and settings (through DOCKER_HOST)

The operator commands act through the running plugin's socket when a plugin
holds the ledger (REXRAY_STATEDIR), and on the store and ledger directly when
none runs. Both ways take the plugin's per-volume locks.
`

// Run runs args (without the program name) and returns the exit code.
func (c *Command) Run(ctx context.Context, args []string) int {
	cmd, rest := "serve", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = c.serve(ctx)
	case "version":
		fmt.Fprintln(c.Stdout, "rexray", c.Version)
	case "env":
		err = c.env(ctx, rest)
	case "volume", "volumes":
		err = c.volume(ctx, rest)
	case "snapshot", "snapshots":
		err = c.snapshot(ctx, rest)
	case "plugin":
		err = c.plugin(ctx, rest)
	case "events":
		err = c.events(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(c.Stdout, usage)
	default:
		fmt.Fprintf(c.Stderr, "rexray: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err == flag.ErrHelp {
		return 2
	}
	if err != nil {
		fmt.Fprintln(c.Stderr, "rexray:", err)
		return 1
	}
	return 0
}
