// Package mount is the OS side of a volume: it finds or makes a filesystem
// on a block device, mounts it under the mount root, prepares the data
// directory handed to containers, and unmounts it again.
//
// Tools are exec'd with argument lists, never through a shell.
package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

const mib = 1 << 20

// filesystem is what this package knows about one filesystem type.
type filesystem struct {
	mkfs    []string // the tool and its flags; the device follows
	minSize int64    // smallest volume mkfs formats
	options string   // mount data
}

var filesystems = map[string]filesystem{
	// nodiscard: a new image is already zero, and discarding a large sparse
	// file only costs time.
	"ext4": {mkfs: []string{"mkfs.ext4", "-F", "-q", "-E", "nodiscard"}, minSize: 8 * mib},
	"ext3": {mkfs: []string{"mkfs.ext3", "-F", "-q", "-E", "nodiscard"}, minSize: 8 * mib},
	// nouuid: a clone shares its origin's UUID, and both may be mounted.
	"xfs": {mkfs: []string{"mkfs.xfs", "-f", "-q", "-K"}, minSize: 300 * mib, options: "nouuid"},
}

// FSTypes lists the filesystem types that can be made.
func FSTypes() []string {
	names := make([]string, 0, len(filesystems))
	for n := range filesystems {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckSize tells whether a volume of size bytes can carry fsType.
func CheckSize(fsType string, size int64) error {
	fs, ok := filesystems[fsType]
	if !ok {
		return fmt.Errorf("unknown filesystem type %q: accepted are %s", fsType, strings.Join(FSTypes(), ", "))
	}
	if size < fs.minSize {
		return fmt.Errorf("size %d bytes is too small for %s: at least %dMiB is needed", size, fsType, fs.minSize/mib)
	}
	return nil
}

// Probe returns the type of the filesystem on device, or "" when it holds
// none that blkid recognises.
func Probe(ctx context.Context, device string) (string, error) {
	out, err := run(ctx, "blkid", "-p", "-s", "TYPE", "-o", "value", "--", device)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return "", nil // blkid: nothing found
	}
	if err != nil {
		return "", fmt.Errorf("probe %s: %w", device, err)
	}
	return strings.TrimSpace(out), nil
}

// Format makes a new fsType filesystem on device, destroying what was there.
func Format(ctx context.Context, device, fsType string) error {
	fs, ok := filesystems[fsType]
	if !ok {
		return fmt.Errorf("format %s: unknown filesystem type %q: accepted are %s", device, fsType, strings.Join(FSTypes(), ", "))
	}
	args := append(append([]string(nil), fs.mkfs[1:]...), device)
	if _, err := run(ctx, fs.mkfs[0], args...); err != nil {
		return fmt.Errorf("format %s as %s: %w", device, fsType, err)
	}
	return nil
}

// run execs a tool and returns its standard output; a failure carries what
// the tool wrote to standard error, so the user sees more than "exit status 1".
func run(ctx context.Context, tool string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
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
