package mount

import (
	"context"

	"github.com/rexray/rexray/internal/command"
)

// debugf logs a step at debug level on the logger of the call in ctx.
func debugf(ctx context.Context, format string, args ...any) { command.Debugf(ctx, format, args...) }
