// Package config reads rexray's settings from the environment, under the
// names REX-Ray documented, so that its users' settings keep working.
package config

import (
	"fmt"
	"os"
	"strconv"

	"github.com/kelseyhightower/envconfig"
)

// OpsPrefix is the prefix of libStorage's integration settings.
const OpsPrefix = "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS"

// Config is every plugin-wide setting. Drivers read their own (LOOPBACK_*).
type Config struct {
	Driver   string `envconfig:"REXRAY_DRIVER" default:"loopback"`
	LogLevel string `envconfig:"REXRAY_LOGLEVEL" default:"warn"`
	FSType   string `envconfig:"REXRAY_FSTYPE" default:"ext4"`
	Preempt  bool   `envconfig:"REXRAY_PREEMPT"`
	StateDir string `envconfig:"REXRAY_STATEDIR" default:"/var/lib/rexray/state"`
	// Host is where the Docker endpoint listens.
	Host string `envconfig:"REXRAY_HOST" default:"unix:///run/docker/plugins/rexray.sock"`

	LinuxRootPath string   `envconfig:"LINUX_VOLUME_ROOTPATH" default:"/data"`
	LinuxFileMode FileMode `envconfig:"LINUX_VOLUME_FILEMODE" default:"0700"`

	Ops Operations
}

// Operations are libStorage's integration.volume.operations.* settings.
type Operations struct {
	MountPreempt           bool   `envconfig:"MOUNT_PREEMPT"`
	MountPath              string `envconfig:"MOUNT_PATH" default:"/var/lib/rexray/volumes"`
	MountRootPath          string `envconfig:"MOUNT_ROOTPATH"`
	UnmountIgnoreUsedCount bool   `envconfig:"UNMOUNT_IGNOREUSEDCOUNT"`
	RemoveDisable          bool   `envconfig:"REMOVE_DISABLE"`
	RemoveForce            bool   `envconfig:"REMOVE_FORCE"`
	CreateDisable          bool   `envconfig:"CREATE_DISABLE"`
	CreateImplicit         bool   `envconfig:"CREATE_IMPLICIT" default:"true"`
	CreateDefaultSize      string `envconfig:"CREATE_DEFAULT_SIZE" default:"16"`
	CreateDefaultFSType    string `envconfig:"CREATE_DEFAULT_FSTYPE"`
	CreateDefaultType      string `envconfig:"CREATE_DEFAULT_TYPE"`
	CreateDefaultIOPS      int64  `envconfig:"CREATE_DEFAULT_IOPS"`
	CreateDefaultAvailZone string `envconfig:"CREATE_DEFAULT_AVAILABILITYZONE"`
}

// FileMode is an octal file mode such as 0700.
type FileMode os.FileMode

// Decode implements envconfig.Decoder.
func (m *FileMode) Decode(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("%q is not an octal file mode such as 0700", s)
	}
	*m = FileMode(v)
	return nil
}

// FromEnv reads the configuration.
func FromEnv() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	if err := envconfig.Process(OpsPrefix, &c.Ops); err != nil {
		return c, err
	}
	return c, nil
}

// Preempting tells whether Mount takes volumes from other hosts.
func (c Config) Preempting() bool { return c.Preempt || c.Ops.MountPreempt }

// DefaultFSType is the filesystem of volumes created without one.
func (c Config) DefaultFSType() string {
	if c.Ops.CreateDefaultFSType != "" {
		return c.Ops.CreateDefaultFSType
	}
	return c.FSType
}

// RootPath is the directory inside a volume that containers see.
func (c Config) RootPath() string {
	if c.Ops.MountRootPath != "" {
		return c.Ops.MountRootPath
	}
	return c.LinuxRootPath
}
