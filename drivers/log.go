package drivers

import (
	"context"

	"github.com/sirupsen/logrus"
)

type logKey struct{}

// WithLog is ctx carrying the logger of one call, with its fields
// (volume, op, req), for the drivers it reaches to log with.
func WithLog(ctx context.Context, log logrus.FieldLogger) context.Context {
	return context.WithValue(ctx, logKey{}, log)
}

// LogFrom is the call's logger in ctx, else fallback.
func LogFrom(ctx context.Context, fallback logrus.FieldLogger) logrus.FieldLogger {
	if log, ok := ctx.Value(logKey{}).(logrus.FieldLogger); ok {
		return log
	}
	return fallback
}
