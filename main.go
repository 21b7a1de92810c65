// Command rexray is the rexray Docker volume plugin and its operator CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rexray/rexray/cli"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/drivers/rbd"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	cmd := &cli.Command{
		Registry: drivers.Registry{loopback.Name: loopback.FromEnv, rbd.Name: rbd.FromEnv},
		Version:  version,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
	}
	code := cmd.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
