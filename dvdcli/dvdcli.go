// Package dvdcli is a stand-in for dvdcli, the command mesos-module-dvdi
// runs to mount external volumes for Mesos tasks. It speaks Docker's volume
// plugin protocol to the plugin's socket, as the original did, and keeps
// its command lines:
//
//	dvdcli mount --volumedriver=rexray --volumename=NAME [--volumeopts=k=v ...] [--explicitCreate=true]
//	dvdcli unmount --volumedriver=rexray --volumename=NAME
//
// mount prints the host path and nothing else on stdout.
package dvdcli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rexray/rexray/api/client"
	"github.com/rexray/rexray/config"
)

// Command is one dvdcli run. Its fields default to the host's paths.
type Command struct {
	Find Finder
	IDs  Records
	// DockerRoot and MountPath map the mount point a managed plugin
	// reports, inside its own mount namespace under MountPath, to the
	// host's path under dockerd's data root.
	DockerRoot, MountPath string
	Stdout                io.Writer
	Stderr                io.Writer
}

// Run runs dvdcli with the host's defaults (and DVDCLI_SOCKET,
// DVDCLI_STATEDIR, DOCKER_ROOT, LIBSTORAGE_..._MOUNT_PATH) and returns its
// exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &Command{
		Find:       HostFinder(os.Getenv("DVDCLI_SOCKET")),
		IDs:        HostRecords(os.Getenv("DVDCLI_STATEDIR")),
		DockerRoot: os.Getenv("DOCKER_ROOT"),
		MountPath:  os.Getenv(config.OpsPrefix + "_MOUNT_PATH"),
		Stdout:     stdout,
		Stderr:     stderr,
	}
	if c.DockerRoot == "" {
		c.DockerRoot = client.DefaultDockerRoot
	}
	if c.MountPath == "" {
		c.MountPath = config.DefaultMountPath
	}
	return c.Run(ctx, args)
}

const usage = `usage:
  dvdcli mount --volumedriver=NAME --volumename=VOLUME [--volumeopts=KEY=VALUE ...] [--explicitCreate[=true]]
  dvdcli unmount --volumedriver=NAME --volumename=VOLUME
  dvdcli version
`

// Run runs args (without the program name) and returns the exit code.
func (c *Command) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "mount":
		err = c.mount(ctx, args[1:])
	case "unmount":
		err = c.unmount(ctx, args[1:])
	case "version":
		fmt.Fprintln(c.Stdout, "dvdcli (rexray)")
	default:
		fmt.Fprintf(c.Stderr, "dvdcli: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(c.Stderr, "dvdcli:", err)
		return 1
	}
	return 0
}

// request is a parsed command line.
type request struct {
	driver, volume string
	opts           map[string]string
	explicit       bool
}

func (c *Command) parse(cmd string, args []string, withOpts bool) (request, error) {
	r := request{opts: map[string]string{}}
	fs := flag.NewFlagSet("dvdcli "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&r.driver, "volumedriver", "rexray", "the volume plugin's name")
	fs.StringVar(&r.volume, "volumename", "", "the volume")
	if withOpts {
		fs.Var((*opts)(&r.opts), "volumeopts", "a create option KEY=VALUE (repeatable)")
		// The original registers --explicitcreate; mesos-module-dvdi sends
		// --explicitCreate=true. Both mean the same.
		explicit := (*boolFlag)(&r.explicit)
		fs.Var(explicit, "explicitcreate", "mount an existing volume only: a missing one is an error, never created")
		fs.Var(explicit, "explicitCreate", "the same as --explicitcreate")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(c.Stderr)
			fs.PrintDefaults()
		}
		return r, err
	}
	switch {
	case fs.NArg() > 0:
		return r, fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))
	case r.volume == "":
		return r, fmt.Errorf("%s: --volumename is required", cmd)
	case r.driver == "":
		return r, fmt.Errorf("%s: --volumedriver is empty", cmd)
	}
	return r, nil
}

// mount mounts the volume for a new mount ID, recorded so that an unmount
// releases exactly one. A missing volume is created with the options,
// unless explicit create is on: then, as in the original dvdcli, the mount
// is solely a mount, and a missing volume is an error.
func (c *Command) mount(ctx context.Context, args []string) error {
	r, err := c.parse("mount", args, true)
	if err != nil {
		return err
	}
	addr, err := c.Find.Address(r.driver)
	if err != nil {
		return err
	}
	cli, err := client.ForAddress(addr)
	if err != nil {
		return err
	}
	if _, err := cli.Call(ctx, "Get", client.Request{Name: r.volume}); err != nil {
		if r.explicit {
			return fmt.Errorf("mount %s: --explicitCreate=true mounts existing volumes only (without it, a missing volume is created with --volumeopts): %w", r.volume, err)
		}
		if _, err := cli.Call(ctx, "Create", client.Request{Name: r.volume, Opts: r.opts}); err != nil {
			return fmt.Errorf("mount %s: %w", r.volume, err)
		}
	}
	id, err := newID()
	if err != nil {
		return err
	}
	if err := c.IDs.Add(r.driver, r.volume, id); err != nil {
		return fmt.Errorf("mount %s: %w", r.volume, err)
	}
	res, err := cli.Call(ctx, "Mount", client.Request{Name: r.volume, ID: id})
	if err != nil {
		c.IDs.Remove(r.driver, r.volume, id)
		return fmt.Errorf("mount %s: %w", r.volume, err)
	}
	fmt.Fprintln(c.Stdout, client.HostPath(client.ManagedID(addr), c.DockerRoot, c.MountPath, res.Mountpoint))
	return nil
}

// unmount releases one of the mount IDs dvdcli used for the volume on this
// host; the plugin unmounts when the last one goes.
func (c *Command) unmount(ctx context.Context, args []string) error {
	r, err := c.parse("unmount", args, false)
	if err != nil {
		return err
	}
	cli, err := c.Find.Client(r.driver)
	if err != nil {
		return err
	}
	id, err := c.IDs.Claim(r.driver, r.volume)
	if err != nil {
		return fmt.Errorf("unmount %s: %w", r.volume, err)
	}
	if _, err := cli.Call(ctx, "Unmount", client.Request{Name: r.volume, ID: id}); err != nil {
		c.IDs.Unclaim(r.driver, r.volume, id)
		return fmt.Errorf("unmount %s: %w", r.volume, err)
	}
	return c.IDs.Remove(r.driver, r.volume, id)
}

// newID is a mount ID as dockerd makes them: 64 hex digits, here prefixed
// so that the plugin's log tells who mounted.
func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "dvdcli-" + hex.EncodeToString(b), nil
}

// opts collects repeated --volumeopts KEY=VALUE. One value may also hold
// several, comma-separated, as the original's string slice took them, but
// only when every part is a KEY=VALUE: "k=a,b" stays one option.
type opts map[string]string

func (o *opts) String() string { return fmt.Sprint(map[string]string(*o)) }

func (o *opts) Set(s string) error {
	parts := strings.Split(s, ",")
	for _, p := range parts {
		if !strings.Contains(p, "=") {
			parts = []string{s}
			break
		}
	}
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%q: give KEY=VALUE, as size=5", s)
		}
		(*o)[strings.TrimSpace(k)] = v
	}
	return nil
}

// boolFlag is a flag.Value that, like a bool flag, may stand alone.
type boolFlag bool

func (b *boolFlag) String() string { return strconv.FormatBool(bool(*b)) }

func (b *boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q: give true or false", s)
	}
	*b = boolFlag(v)
	return nil
}

func (b *boolFlag) IsBoolFlag() bool { return true }
