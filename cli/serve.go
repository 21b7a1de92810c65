package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/plugin"
	"github.com/rexray/rexray/state"
)

// stateLockTimeout is how long serve waits for a ledger another process
// holds: an operator command holds it for a moment only.
const stateLockTimeout = 2 * time.Second

func (c *Command) serve(ctx context.Context) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log := logrus.New()
	log.SetOutput(c.Stderr)
	lvl, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("REXRAY_LOGLEVEL=%q: %w", cfg.LogLevel, err)
	}
	log.SetLevel(lvl)
	// Fail fast, before listening, when another process holds the ledger;
	// and on a REXRAY_HOST that cannot be served, before opening it.
	if _, _, err := cfg.Endpoint(); err != nil {
		return err
	}
	st, err := state.Open(cfg.StateDir, stateLockTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := c.assemble(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	l, err := plugin.Listen(cfg, log)
	if err != nil {
		return err
	}
	log.Warnf("rexray %s serving %s on %s", c.Version, strings.Join(p.ServiceNames(), ", "), cfg.Host)
	if err := p.Serve(ctx, l); err != nil {
		return err
	}
	// dockerd stops a plugin with SIGTERM (docker plugin disable); say so,
	// or a stop looks like a crash in its log.
	log.Warnf("rexray stopping: %v", context.Cause(ctx))
	return nil
}

// assemble builds the plugin over every configured service.
func (c *Command) assemble(ctx context.Context, cfg config.Config, st *state.Store, log logrus.FieldLogger) (*plugin.Plugin, error) {
	if err := plugin.CheckConfig(cfg); err != nil {
		return nil, err
	}
	list, err := cfg.ServiceList()
	if err != nil {
		return nil, err
	}
	instance, err := cfg.Instance()
	if err != nil {
		return nil, err
	}
	services := make([]plugin.Service, 0, len(list))
	for _, s := range list {
		drv, err := c.Registry.New(ctx, s.Driver, drivers.Settings{Service: s.Name, InstanceID: instance, Log: log})
		if err != nil {
			return nil, fmt.Errorf("service %s (REXRAY_DRIVER, REXRAY_SERVICES): %w", s.Name, err)
		}
		services = append(services, plugin.Service{Name: s.Name, Driver: drv})
	}
	mnt := &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: cfg.RootPath(), DataMode: os.FileMode(cfg.LinuxFileMode)}
	return plugin.New(cfg, services, mnt, st, log), nil
}
