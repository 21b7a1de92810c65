package mount

import (
	"context"

	"github.com/rexray/rexray/internal/reqid"
)

// debugf logs a step at debug level on the logger of the call in ctx,
// under the call's request ID; outside a call it logs nothing.
func debugf(ctx context.Context, format string, args ...any) {
	if log := reqid.Log(ctx, nil); log != nil {
		log.Debugf(format, args...)
	}
}
