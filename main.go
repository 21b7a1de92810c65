// Command rexray is the rexray Docker volume plugin.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/plugin"
	"github.com/rexray/rexray/state"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "dev"

// stateLockTimeout is how long to wait for a ledger another process holds.
const stateLockTimeout = 2 * time.Second

func main() {
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "rexray:", err)
			os.Exit(1)
		}
	case "version":
		fmt.Println("rexray", version)
	default:
		fmt.Fprintf(os.Stderr, "rexray: unknown command %q: use serve or version\n", cmd)
		os.Exit(2)
	}
}

func registry() drivers.Registry {
	return drivers.Registry{loopback.Name: loopback.FromEnv}
}

func serve(ctx context.Context) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log := logrus.New()
	lvl, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("REXRAY_LOGLEVEL=%q: %w", cfg.LogLevel, err)
	}
	log.SetLevel(lvl)
	if err := plugin.CheckConfig(cfg); err != nil {
		return err
	}

	drv, err := registry().New(ctx, cfg.Driver)
	if err != nil {
		return fmt.Errorf("REXRAY_DRIVER=%s: %w", cfg.Driver, err)
	}
	// Fail fast, before listening, when another process holds the ledger.
	st, err := state.Open(cfg.StateDir, stateLockTimeout)
	if err != nil {
		return err
	}
	defer st.Close()

	l, err := plugin.Listen(cfg.Host)
	if err != nil {
		return err
	}
	mnt := &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: cfg.RootPath(), DataMode: os.FileMode(cfg.LinuxFileMode)}
	p := plugin.New(cfg, drv, mnt, st, log.WithField("driver", drv.Name()))
	log.Warnf("rexray %s serving %s on %s", version, drv.Name(), cfg.Host)
	return p.Serve(ctx, l)
}
