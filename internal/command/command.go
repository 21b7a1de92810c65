// Package command runs the system's tools (mkfs, mount helpers,
// cryptsetup) for the packages that drive the kernel.
package command

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/rexray/rexray/internal/reqid"
)

// Run execs tool with stdin on its standard input and returns its standard
// output; a failure carries what the tool wrote to standard error, so the
// user sees more than "exit status 1". The run is logged at debug level on
// the logger of the call in ctx.
func Run(ctx context.Context, stdin []byte, tool string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	Debugf(ctx, "run %s", strings.Join(cmd.Args, " "))
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: %w", tool, ctx.Err())
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("%s: %s: %w", tool, msg, err)
		}
		return "", fmt.Errorf("%s: %w", tool, err)
	}
	return stdout.String(), nil
}

// Debugf logs a step at debug level on the logger of the call in ctx,
// under the call's request ID; outside a call it logs nothing.
func Debugf(ctx context.Context, format string, args ...any) {
	if log := reqid.Log(ctx, nil); log != nil {
		log.Debugf(format, args...)
	}
}
