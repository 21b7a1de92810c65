// Package reqid gives every call a request ID and carries it, with the
// call's logger, in the call's context: one failed `docker run` is
// followed through every line it caused, front door, engine, drivers and
// mount code alike, and the ID comes back in the error the caller sees.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"regexp"

	"github.com/sirupsen/logrus"
)

// Header is where a caller over HTTP may give its own ID (the operator
// CLI, a proxy), and where the answer names the one used. CSI's gRPC
// metadata key is its lower-case form.
const Header = "X-Request-Id"

// MetadataKey is the gRPC metadata key of a caller's own ID.
const MetadataKey = "x-request-id"

type idKey struct{}
type logKey struct{}

// New is a fresh ID: 8 hex digits tell the calls of a day apart.
func New() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// valid is what a caller's own ID may be: it lands in log lines and error
// messages, so nothing that could break a line or a field.
var valid = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// Given is the caller's ID when it is one rexray can log, else a new ID.
func Given(id string) string {
	if valid.MatchString(id) {
		return id
	}
	return New()
}

// With is ctx carrying the call's ID.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, idKey{}, id)
}

// From is the call's ID in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(idKey{}).(string)
	return id
}

// Ensure is ctx with an ID, the one it has or a new one.
func Ensure(ctx context.Context) (context.Context, string) {
	if id := From(ctx); id != "" {
		return ctx, id
	}
	id := New()
	return With(ctx, id), id
}

// WithLog is ctx carrying the call's logger, with its fields (req, op,
// volume).
func WithLog(ctx context.Context, log logrus.FieldLogger) context.Context {
	return context.WithValue(ctx, logKey{}, log)
}

// Log is the call's logger in ctx, else fallback.
func Log(ctx context.Context, fallback logrus.FieldLogger) logrus.FieldLogger {
	if log, ok := ctx.Value(logKey{}).(logrus.FieldLogger); ok {
		return log
	}
	return fallback
}

// Quiet is a logger that writes nothing: the fallback of code that logs
// only within a call.
func Quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.PanicLevel)
	return l
}

// Error is a call's error with the call's ID, as its caller sees it.
type Error struct {
	Err error
	ID  string
}

func (e *Error) Error() string { return e.Err.Error() + " (request " + e.ID + ")" }
func (e *Error) Unwrap() error { return e.Err }

// Annotate is err with the ID of ctx's call, once: an error that names a
// request already is left as it is. nil stays nil.
func Annotate(ctx context.Context, err error) error {
	var named *Error
	id := From(ctx)
	if err == nil || id == "" || errors.As(err, &named) {
		return err
	}
	return &Error{Err: err, ID: id}
}
