package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/api"
	"github.com/rexray/rexray/api/client"
	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/plugin"
)

// backend is what the operator commands act on: the plugin in this process,
// or the running plugin through its socket.
type backend interface {
	Volumes(ctx context.Context) ([]api.VolumeInfo, error)
	Volume(ctx context.Context, name string) (api.VolumeInfo, error)
	CreateVolume(ctx context.Context, name string, opts map[string]string) (api.VolumeInfo, error)
	RemoveVolume(ctx context.Context, name string) error
	Attach(ctx context.Context, name string) (api.VolumeInfo, error)
	Detach(ctx context.Context, name string) error
	MountVolume(ctx context.Context, name string) (api.VolumeInfo, error)
	UnmountVolume(ctx context.Context, name string) error
	ResizeVolume(ctx context.Context, name, size string) (api.VolumeInfo, error)
	Snapshots(ctx context.Context) ([]api.Snapshot, error)
	CreateSnapshot(ctx context.Context, volume, name string) (api.Snapshot, error)
	RemoveSnapshot(ctx context.Context, name string) error
}

// ledgerWait is how long an operator command waits for the ledger before
// it looks for the plugin that holds it.
const ledgerWait = 300 * time.Millisecond

// connect reaches the plugin at REXRAY_HOST when it is set, and never
// acts elsewhere. Else it opens the ledger and assembles the plugin in this
// process, or, when a running plugin holds the ledger, finds that plugin's
// socket. The returned close releases what connect took.
func (c *Command) connect(ctx context.Context) (backend, func(), error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, nil, err
	}
	if config.HostSet() {
		r, err := dialHost(ctx, cfg)
		return r, func() {}, err
	}
	st, err := ledger.Open(cfg.StateDir, ledgerWait)
	if errors.Is(err, ledger.ErrInUse) {
		r, err := dial(ctx, cfg.Host)
		if r != nil {
			r.mountPath = cfg.Ops.MountPath
		}
		return r, func() {}, err
	}
	if err != nil {
		return nil, nil, err
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	eng, err := c.assemble(ctx, cfg, st, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	// Reconcile as a starting plugin does: the ledger and the host agree
	// before anything is changed.
	eng.Restore(ctx)
	return plugin.NewAdmin(eng), func() { st.Close() }, nil
}

// managedSockets is where dockerd puts managed plugins' sockets:
// /run/docker/plugins/<plugin ID>/rexray.sock.
const managedSockets = "/run/docker/plugins/*/rexray.sock"

// dial finds the running plugin when REXRAY_HOST is not set: at its
// default socket (host mode), else the one managed plugin whose socket
// answers.
func dial(ctx context.Context, host string) (*remote, error) {
	if path, ok := strings.CutPrefix(host, "unix://"); ok {
		r := &remote{cli: client.New(path), pluginID: client.ManagedID(path)}
		if r.alive(ctx) == nil {
			return r, nil
		}
	}
	socks, _ := filepath.Glob(managedSockets)
	var found []*remote
	for _, s := range socks {
		r := &remote{cli: client.New(s), pluginID: client.ManagedID(s)}
		if r.alive(ctx) == nil {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("the ledger is held by a running rexray, but no plugin answers at %s or %s; set REXRAY_HOST to its socket", host, managedSockets)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d rexray plugins answer at %s: set REXRAY_HOST to the one to use", len(found), managedSockets)
}

// dialHost reaches the plugin at the REXRAY_HOST the operator set: its
// socket, or its TCP endpoint with the REXRAY_TLS_* files as the client's
// certificate (plain only with REXRAY_HOST_INSECURE=true). A plugin that
// does not answer there is an error, never a reason to act elsewhere.
func dialHost(ctx context.Context, cfg config.Config) (*remote, error) {
	network, addr, err := cfg.Endpoint()
	if err != nil {
		return nil, err
	}
	r := &remote{mountPath: cfg.Ops.MountPath}
	how, hint := "", "start the plugin there, or unset REXRAY_HOST to act on the store and ledger (REXRAY_STATEDIR) directly"
	switch {
	case network == "unix":
		r.cli, r.pluginID = client.New(addr), client.ManagedID(addr)
	case cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" && cfg.HostInsecure:
		r.cli, how = client.Dial("tcp", addr, nil), " (plain TCP, REXRAY_HOST_INSECURE=true)"
	default:
		tc, err := clientTLS(cfg, addr)
		if err != nil {
			return nil, err
		}
		r.cli, how = client.Dial("tcp", addr, tc), fmt.Sprintf(" (TLS, client certificate REXRAY_TLS_CERTFILE=%s)", cfg.TLSCertFile)
		hint = "check that the plugin serves TLS there and that its REXRAY_TLS_CLIENTCAFILE signed that certificate, " + hint
	}
	if err := r.alive(ctx); err != nil {
		return nil, fmt.Errorf("no rexray answers at REXRAY_HOST=%s%s: %w; %s", cfg.Host, how, err, hint)
	}
	return r, nil
}

// remote is a running plugin reached through its socket.
type remote struct {
	cli *client.Client
	// pluginID is a managed plugin's ID: its mount points, under
	// mountPath in its namespace, lie under its propagated mount in
	// dockerd's data root.
	pluginID  string
	mountPath string
}

func (r *remote) alive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := r.cli.Call(ctx, "Capabilities", client.Request{})
	return err
}

func (r *remote) call(ctx context.Context, method string, req api.Request, out any) error {
	return r.cli.Admin(ctx, method, req, out)
}

func (r *remote) Volumes(ctx context.Context) ([]api.VolumeInfo, error) {
	var vols []api.VolumeInfo
	err := r.call(ctx, api.VolumeList, api.Request{}, &vols)
	for i := range vols {
		vols[i].Mountpoint = r.hostPath(vols[i].Mountpoint)
	}
	return vols, err
}

func (r *remote) volumeCall(ctx context.Context, method, name string, opts map[string]string) (api.VolumeInfo, error) {
	var v api.VolumeInfo
	err := r.call(ctx, method, api.Request{Name: name, Opts: opts}, &v)
	v.Mountpoint = r.hostPath(v.Mountpoint)
	return v, err
}

func (r *remote) Volume(ctx context.Context, name string) (api.VolumeInfo, error) {
	return r.volumeCall(ctx, api.VolumeInspect, name, nil)
}

func (r *remote) CreateVolume(ctx context.Context, name string, opts map[string]string) (api.VolumeInfo, error) {
	return r.volumeCall(ctx, api.VolumeCreate, name, opts)
}

func (r *remote) RemoveVolume(ctx context.Context, name string) error {
	return r.call(ctx, api.VolumeRemove, api.Request{Name: name}, nil)
}

func (r *remote) Attach(ctx context.Context, name string) (api.VolumeInfo, error) {
	return r.volumeCall(ctx, api.VolumeAttach, name, nil)
}

func (r *remote) Detach(ctx context.Context, name string) error {
	return r.call(ctx, api.VolumeDetach, api.Request{Name: name}, nil)
}

func (r *remote) MountVolume(ctx context.Context, name string) (api.VolumeInfo, error) {
	return r.volumeCall(ctx, api.VolumeMount, name, nil)
}

func (r *remote) ResizeVolume(ctx context.Context, name, size string) (api.VolumeInfo, error) {
	var v api.VolumeInfo
	err := r.call(ctx, api.VolumeResize, api.Request{Name: name, Size: size}, &v)
	v.Mountpoint = r.hostPath(v.Mountpoint)
	return v, err
}

func (r *remote) UnmountVolume(ctx context.Context, name string) error {
	return r.call(ctx, api.VolumeUnmount, api.Request{Name: name}, nil)
}

func (r *remote) Snapshots(ctx context.Context) ([]api.Snapshot, error) {
	var snaps []api.Snapshot
	err := r.call(ctx, api.SnapshotList, api.Request{}, &snaps)
	return snaps, err
}

func (r *remote) CreateSnapshot(ctx context.Context, volume, name string) (api.Snapshot, error) {
	var s api.Snapshot
	err := r.call(ctx, api.SnapshotCreate, api.Request{Volume: volume, Name: name}, &s)
	return s, err
}

func (r *remote) RemoveSnapshot(ctx context.Context, name string) error {
	return r.call(ctx, api.SnapshotRemove, api.Request{Name: name}, nil)
}

// hostPath maps a managed plugin's mount point, a path in the plugin's
// propagated mount, to where the host sees it (DOCKER_ROOT: dockerd's data
// root, if not the default).
func (r *remote) hostPath(mp string) string {
	root := os.Getenv("DOCKER_ROOT")
	if root == "" {
		root = client.DefaultDockerRoot
	}
	return client.HostPath(r.pluginID, root, r.mountPath, mp)
}
