package mount

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Spec is how Mount makes and mounts one volume's filesystem: what every
// host that mounts the volume applies, from the volume's record.
type Spec struct {
	FSType  string
	Content Content
	// Owner is the data folder's owner and mode, set when a mount makes
	// the folder (the volume's first).
	Owner Owner
	// MkfsOpts go to mkfs before the device, each a separate argument;
	// CheckMkfsOptions accepts them.
	MkfsOpts []string
	// MountOpts are mount options CheckMountOptions accepts.
	MountOpts []string
}

// Owner is who owns a new data folder, and its mode; a zero Mode is the
// Mounter's DataMode.
type Owner struct {
	UID, GID int
	Mode     os.FileMode
}

// maxID is the largest user or group ID: (uid_t)-1 means "no change" to
// chown, and is no one's.
const maxID = 1<<32 - 2

// CheckID refuses a user or group ID out of range; what names the option.
func CheckID(what string, id int64) error {
	if id < 0 || id > maxID {
		return fmt.Errorf("invalid %s %d: give a number from 0 to %d", what, id, maxID)
	}
	return nil
}

// ParseMode reads a data folder's mode in octal (0750 or 750). The
// setuid, setgid and sticky bits are refused: a folder a container owns
// needs none, and setgid would change the group of what is made in it.
func ParseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 8, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid mode %q: give permission bits in octal, from 0001 to 0777 (such as 0750)", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid mode %q: a data folder no one but root may enter; give permission bits such as 0750", s)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("invalid mode %q: only permission bits (up to 0777) are accepted; setuid, setgid and sticky bits are refused", s)
	}
	return os.FileMode(n), nil
}

// FormatMode is mode as ParseMode reads it.
func FormatMode(mode os.FileMode) string { return fmt.Sprintf("%04o", uint32(mode.Perm())) }
