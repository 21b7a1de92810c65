package ceph

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

// A tool's exit status is the errno of what failed; the error says what
// the tool said, not "exit status 2".
func TestToolError(t *testing.T) {
	script := `echo "2026-01-01T00:00:00.000+0000 7f -1 librbd: noise" >&2; echo "rbd: error opening image nope: (2) No such file or directory" >&2; exit 2`
	_, err := Tools{}.Run(context.Background(), "sh", "-c", script)
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("err = %v, want ENOENT", err)
	}
	var te *ToolError
	if !errors.As(err, &te) || te.msg != "rbd: error opening image nope: (2) No such file or directory" {
		t.Errorf("err = %q", err)
	}
}
