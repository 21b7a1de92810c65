package csi

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/engine/platform"
	"github.com/rexray/rexray/mount"
)

// statusOf is the gRPC answer to err: a status as it is, the engine's and
// drivers' typed errors by the codes CSI gives them, the rest Internal.
// The message is err's own, which says what was wrong and what to do.
func statusOf(err error) *status.Status {
	if st, ok := status.FromError(err); ok {
		return st
	}
	var nofs *mount.NoFilesystemError
	code := codes.Internal
	switch {
	case errors.Is(err, platform.ErrNoAnswer):
		// Checked first: a lookup that one service failed to answer
		// says nothing of the volume.
		code = codes.Unavailable
	case errors.Is(err, drivers.ErrNotFound), errors.Is(err, drivers.ErrSnapshotNotFound):
		code = codes.NotFound
	case errors.Is(err, drivers.ErrExists), errors.Is(err, drivers.ErrSnapshotExists):
		code = codes.AlreadyExists
	case errors.Is(err, drivers.ErrInvalid), errors.Is(err, ledger.ErrInvalidHold):
		code = codes.InvalidArgument
	case errors.Is(err, drivers.ErrHeld), errors.Is(err, engine.ErrInUse), errors.As(err, &nofs):
		code = codes.FailedPrecondition
	case errors.Is(err, drivers.ErrNoRoom):
		code = codes.ResourceExhausted
	case errors.Is(err, drivers.ErrUnsupported):
		code = codes.Unimplemented
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.New(code, err.Error())
}

// invalid is the answer to a request that lacks or mistakes a field.
func invalid(format string, a ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, a...))
}
