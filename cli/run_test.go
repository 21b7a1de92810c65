package cli

import (
	"bytes"
	"context"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
)

// run runs a rexray command line as main does, with the loopback driver.
func run(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	c := &Command{Registry: drivers.Registry{loopback.Name: loopback.FromEnv}, Version: "test", Stdout: &out, Stderr: &errOut}
	code := c.Run(ctx, args)
	return code, out.String(), errOut.String()
}
