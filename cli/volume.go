package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/api"
)

// opsFlags parses an operator command's flags: --format, and -o for create.
type opsFlags struct {
	fs     *flag.FlagSet
	stderr io.Writer
	format string
	opts   optList
}

func newFlags(name string, stderr io.Writer) *opsFlags {
	f := &opsFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError), stderr: stderr, opts: optList{}}
	// Errors are printed once, by Run; -h prints the flags.
	f.fs.SetOutput(io.Discard)
	f.fs.StringVar(&f.format, "format", "table", "output: table or json")
	return f
}

// parse reads flags wherever they sit among want positional arguments.
func (f *opsFlags) parse(args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				f.fs.SetOutput(f.stderr)
				f.fs.PrintDefaults()
			}
			return nil, err
		}
		if f.fs.NArg() == 0 {
			break
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
	if len(pos) != want {
		return nil, fmt.Errorf("%s takes %d argument(s), got %d: %q", f.fs.Name(), want, len(pos), pos)
	}
	if f.format != "table" && f.format != "json" {
		return nil, fmt.Errorf("--format %q: use table or json", f.format)
	}
	return pos, nil
}

// optList collects repeated -o key=value.
type optList map[string]string

func (o optList) String() string { return fmt.Sprint(map[string]string(o)) }

func (o optList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: give key=value, as docker volume create -o", s)
	}
	o[k] = v
	return nil
}

// volumeArity is how many arguments each `rexray volume` command takes.
var volumeArity = map[string]int{"ls": 0, "list": 0, "inspect": 1, "create": 1, "rm": 1, "remove": 1, "attach": 1, "detach": 1, "mount": 1, "unmount": 1, "resize": 2}

// snapshotArity is the same for `rexray snapshot`.
var snapshotArity = map[string]int{"ls": 0, "list": 0, "create": 2, "rm": 1, "remove": 1}

// start parses `rexray <group> <sub> args...` and connects to the plugin:
// it returns the command, its arguments and flags, and what to act on.
func (c *Command) start(ctx context.Context, group string, arity map[string]int, usage string, args []string) (string, []string, *opsFlags, backend, func(), error) {
	if len(args) == 0 {
		return "", nil, nil, nil, nil, fmt.Errorf("%s: give one of %s", group, usage)
	}
	sub, args := args[0], args[1:]
	want, ok := arity[sub]
	if !ok {
		return "", nil, nil, nil, nil, fmt.Errorf("%s %s: unknown; give one of %s", group, sub, usage)
	}
	f := newFlags(group+" "+sub, c.Stderr)
	if group == "volume" && sub == "create" {
		f.fs.Var(f.opts, "o", "a create option key=value, as docker volume create -o (repeatable)")
		f.fs.Var(f.opts, "opt", "the same as -o")
	}
	pos, err := f.parse(args, want)
	if err != nil {
		return "", nil, nil, nil, nil, err
	}
	b, done, err := c.connect(ctx)
	return sub, pos, f, b, done, err
}

func (c *Command) volume(ctx context.Context, args []string) error {
	sub, pos, f, b, done, err := c.start(ctx, "volume", volumeArity, "ls, inspect, create, rm, attach, detach, mount, unmount, resize NAME SIZE", args)
	if err != nil {
		return err
	}
	defer done()
	var v api.VolumeInfo
	switch sub {
	case "ls", "list":
		vols, err := b.Volumes(ctx)
		if err != nil {
			return err
		}
		return c.printVolumes(f.format, vols)
	case "inspect":
		v, err = b.Volume(ctx, pos[0])
	case "create":
		v, err = b.CreateVolume(ctx, pos[0], f.opts)
	case "attach":
		v, err = b.Attach(ctx, pos[0])
	case "mount":
		v, err = b.MountVolume(ctx, pos[0])
	case "resize":
		v, err = b.ResizeVolume(ctx, pos[0], pos[1])
	case "rm", "remove":
		return c.done(b.RemoveVolume(ctx, pos[0]), pos[0])
	case "detach":
		return c.done(b.Detach(ctx, pos[0]), pos[0])
	case "unmount":
		return c.done(b.UnmountVolume(ctx, pos[0]), pos[0])
	}
	if err != nil {
		return err
	}
	if sub == "mount" && f.format == "table" {
		fmt.Fprintln(c.Stdout, v.Mountpoint) // the one thing a script wants
		return nil
	}
	return c.printVolumes(f.format, []api.VolumeInfo{v})
}

// done prints the name a command acted on, as docker volume rm does.
func (c *Command) done(err error, name string) error {
	if err == nil {
		fmt.Fprintln(c.Stdout, name)
	}
	return err
}

func (c *Command) snapshot(ctx context.Context, args []string) error {
	sub, pos, f, b, done, err := c.start(ctx, "snapshot", snapshotArity, "ls, create VOLUME SNAPSHOT, rm SNAPSHOT", args)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "create":
		s, err := b.CreateSnapshot(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		return c.printSnapshots(f.format, []api.Snapshot{s})
	case "rm", "remove":
		return c.done(b.RemoveSnapshot(ctx, pos[0]), pos[0])
	}
	snaps, err := b.Snapshots(ctx)
	if err != nil {
		return err
	}
	return c.printSnapshots(f.format, snaps)
}

func (c *Command) printJSON(v any) error {
	enc := json.NewEncoder(c.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *Command) printVolumes(format string, vols []api.VolumeInfo) error {
	if format == "json" {
		return c.printJSON(vols)
	}
	w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSERVICE\tSIZE\tUSED\tFREE\tFSTYPE\tDEVICE\tMOUNTS\tMOUNTPOINT")
	for _, v := range vols {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", v.Name, v.Service, units.BytesSize(float64(v.Size)), bytesField(v.Fields["used"]), bytesField(v.Fields["free"]), v.FSType, dash(v.Device), len(v.MountIDs), dash(v.Mountpoint))
	}
	return w.Flush()
}

func (c *Command) printSnapshots(format string, snaps []api.Snapshot) error {
	if format == "json" {
		return c.printJSON(snaps)
	}
	w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVOLUME\tSERVICE\tSIZE\tCREATED")
	for _, s := range snaps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.VolumeName, s.Service, units.BytesSize(float64(s.Size)), s.CreatedAt.Format(time.RFC3339))
	}
	return w.Flush()
}

// bytesField prints a count of bytes from a Status field, "-" without
// one (a volume not mounted on this host).
func bytesField(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "-"
	}
	return units.BytesSize(float64(n))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
