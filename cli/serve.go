package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/csi"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/engine/options"
	"github.com/rexray/rexray/metrics"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/plugin"
	"github.com/rexray/rexray/plugin/listen"
)

// stateLockTimeout is how long serve waits for a ledger another process
// holds: an operator command holds it for a moment only.
const stateLockTimeout = 2 * time.Second

func (c *Command) serve(ctx context.Context) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, c.Stderr)
	if err != nil {
		return err
	}
	// Fail fast, before listening, when another process holds the ledger;
	// and on a REXRAY_HOST that cannot be served, before opening it.
	if _, _, err := cfg.Endpoint(); err != nil {
		return err
	}
	st, err := ledger.Open(cfg.StateDir, stateLockTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := c.assemble(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	l, err := listen.Listen(cfg, log)
	if err != nil {
		return err
	}
	p := plugin.New(eng, cfg.Ops.CreateImplicit)
	p.LogTo(log)
	instance, err := cfg.Instance()
	if err != nil {
		return err
	}
	opts := csi.Options{Engine: eng, Config: cfg, NodeID: instance, Version: c.Version, Log: log}
	if cfg.MetricsAddr != "" {
		m, err := serveMetrics(ctx, cfg.MetricsAddr, eng, log)
		if err != nil {
			return err
		}
		p.Record(m)
		opts.Metrics = m
	}
	// CSI's gRPC on the same socket: one plugin for `docker run -v` and
	// Swarm's cluster volumes.
	cs := csi.New(opts)
	p.ServeGRPC(cs.Handler())
	go func() {
		if err := cs.Reconcile(ctx); err != nil && ctx.Err() == nil {
			log.Errorf("csi: clean up after start: %v", err)
		}
	}()
	log.Warnf("rexray %s serving %s on %s", c.Version, strings.Join(eng.ServiceNames(), ", "), cfg.Host)
	if err := p.Serve(ctx, l); err != nil {
		return err
	}
	// dockerd stops a plugin with SIGTERM (docker plugin disable); say so,
	// or a stop looks like a crash in its log.
	log.Warnf("rexray stopping: %v", context.Cause(ctx))
	return nil
}

// serveMetrics serves eng's metrics at addr (REXRAY_METRICS_ADDR) until
// ctx ends; an address that cannot be opened stops serve.
func serveMetrics(ctx context.Context, addr string, eng *engine.Engine, log logrus.FieldLogger) (*metrics.Metrics, error) {
	l, err := metrics.Listen(addr)
	if err != nil {
		return nil, err
	}
	m := metrics.New(eng)
	eng.Observe(m)
	go func() {
		if err := m.Serve(ctx, l); err != nil {
			log.Errorf("metrics on %s: %v", addr, err)
		}
	}()
	log.Warnf("metrics on http://%s/metrics", l.Addr())
	return m, nil
}

// newLogger is serve's logger: REXRAY_LOGLEVEL's level, REXRAY_LOGFORMAT's
// format, to w.
func newLogger(cfg config.Config, w io.Writer) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(w)
	lvl, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("REXRAY_LOGLEVEL=%q: %w", cfg.LogLevel, err)
	}
	log.SetLevel(lvl)
	switch cfg.LogFormat {
	case "text":
		log.SetFormatter(&logrus.TextFormatter{})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("REXRAY_LOGFORMAT=%q: give text or json", cfg.LogFormat)
	}
	return log, nil
}

// assemble builds the engine over every configured service.
func (c *Command) assemble(ctx context.Context, cfg config.Config, st *ledger.Store, log logrus.FieldLogger) (*engine.Engine, error) {
	if err := options.CheckConfig(cfg); err != nil {
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
	services := make([]engine.Service, 0, len(list))
	for _, s := range list {
		drv, err := c.Registry.New(ctx, s.Driver, drivers.Settings{Service: s.Name, InstanceID: instance, Log: log})
		if err != nil {
			return nil, fmt.Errorf("service %s (REXRAY_DRIVER, REXRAY_SERVICES): %w", s.Name, err)
		}
		services = append(services, engine.Service{Name: s.Name, Driver: drv})
	}
	mnt := &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: cfg.RootPath(), DataMode: os.FileMode(cfg.LinuxFileMode)}
	return engine.New(cfg, services, mnt, st, log), nil
}
