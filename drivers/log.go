package drivers

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/internal/reqid"
)

// WithLog is ctx carrying the logger of one call, with its fields
// (volume, op, req), for the drivers it reaches to log with.
func WithLog(ctx context.Context, log logrus.FieldLogger) context.Context {
	return reqid.WithLog(ctx, log)
}

// LogFrom is the call's logger in ctx, else fallback.
func LogFrom(ctx context.Context, fallback logrus.FieldLogger) logrus.FieldLogger {
	return reqid.Log(ctx, fallback)
}
