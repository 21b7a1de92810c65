// Command rexray is the rexray Docker volume plugin, its operator CLI and,
// installed as dvdcli, the command mesos-module-dvdi runs.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rexray/rexray/cli"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/drivers/rbd"
	"github.com/rexray/rexray/drivers/virtualbox"
	"github.com/rexray/rexray/dvdcli"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "dvdcli" { // /usr/bin/dvdcli, a link
		args = append([]string{"dvdcli"}, args...)
	}
	var code int
	if len(args) > 0 && args[0] == "dvdcli" {
		code = dvdcli.Run(ctx, args[1:], os.Stdout, os.Stderr)
	} else {
		cmd := &cli.Command{
			Registry: drivers.Registry{
				loopback.Name:   loopback.FromEnv,
				rbd.Name:        rbd.FromEnv,
				virtualbox.Name: virtualbox.FromEnv,
			},
			Version: version,
			Stdout:  os.Stdout,
			Stderr:  os.Stderr,
		}
		code = cmd.Run(ctx, args)
	}
	stop()
	os.Exit(code)
}
