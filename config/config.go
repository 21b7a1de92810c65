// Package config reads rexray's settings from the environment, under the
// names REX-Ray documented, so that its users' settings keep working.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// OpsPrefix is the prefix of libStorage's integration settings.
const OpsPrefix = "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS"

// DefaultMountPath is Operations.MountPath's default (the tag spells it
// out too): where volumes are mounted, the managed plugin's propagated
// mount.
const DefaultMountPath = "/var/lib/rexray/volumes"

// Config is every plugin-wide setting. Drivers read their own (LOOPBACK_*).
type Config struct {
	Driver string `envconfig:"REXRAY_DRIVER" default:"loopback"`
	// Services names the storage services of the endpoint, the first the
	// default: "fast,bulk" or "fast=loopback,bulk=loopback". Empty is one
	// service named after REXRAY_DRIVER.
	Services []string `envconfig:"REXRAY_SERVICES"`
	LogLevel string   `envconfig:"REXRAY_LOGLEVEL" default:"warn"`
	// LogFormat is how log lines are written: text (logfmt-like key=value
	// pairs) or json (one object a line), both with the fields req, op and
	// volume.
	LogFormat string `envconfig:"REXRAY_LOGFORMAT" default:"text"`
	// MetricsAddr is where /metrics is served (host:port); empty is off.
	MetricsAddr string `envconfig:"REXRAY_METRICS_ADDR"`
	FSType      string `envconfig:"REXRAY_FSTYPE" default:"ext4"`
	Preempt     bool   `envconfig:"REXRAY_PREEMPT"`
	// PlatformWait bounds each question put to a storage platform (Get,
	// List, the lookups of Create, Mount and Remove) before this host's
	// catalogue answers instead: a platform whose every call costs
	// seconds (Ceph over a slow link, an emulated host) needs more than
	// the default. Zero is the default.
	PlatformWait PlatformWait `envconfig:"REXRAY_PLATFORM_WAIT" default:"5s"`
	// InstanceID names this host to every platform (leases, lock owners);
	// Instance falls back to the host name.
	InstanceID string `envconfig:"REXRAY_INSTANCEID"`
	StateDir   string `envconfig:"REXRAY_STATEDIR" default:"/var/lib/rexray/state"`
	// KeyDir holds the keys of encrypted volumes, one file per volume:
	// this host's, never the store's.
	KeyDir string `envconfig:"REXRAY_KEYDIR" default:"/var/lib/rexray/keys"`
	// Host is where the Docker endpoint listens: unix:///path.sock, or
	// tcp://host:port with TLS (or, explicitly allowed, without).
	Host            string `envconfig:"REXRAY_HOST" default:"unix:///run/docker/plugins/rexray.sock"`
	TLSCertFile     string `envconfig:"REXRAY_TLS_CERTFILE"`
	TLSKeyFile      string `envconfig:"REXRAY_TLS_KEYFILE"`
	TLSClientCAFile string `envconfig:"REXRAY_TLS_CLIENTCAFILE"`
	HostInsecure    bool   `envconfig:"REXRAY_HOST_INSECURE"`

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
	CreateDefaultEncrypted Bool   `envconfig:"CREATE_DEFAULT_ENCRYPTED"`
}

// Bool is true or false, as strconv.ParseBool reads them; anything else
// is refused naming what is accepted.
type Bool bool

// Decode implements envconfig.Decoder.
func (b *Bool) Decode(s string) error {
	v, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a boolean: give true or false", s)
	}
	*b = Bool(v)
	return nil
}

// FileMode is an octal file mode such as 0700: permission bits only.
type FileMode os.FileMode

// Decode implements envconfig.Decoder. Setuid, setgid and sticky bits are
// refused rather than dropped: the folder would not be what was asked for.
func (m *FileMode) Decode(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil || v > 0o7777:
		return fmt.Errorf("%q is not an octal file mode such as 0700", s)
	case v > 0o777:
		return fmt.Errorf("%q sets setuid, setgid or sticky bits, which a volume's folder does not take: give permission bits only, 0000 to 0777, such as 0700", s)
	}
	*m = FileMode(v)
	return nil
}

// PlatformWait is REXRAY_PLATFORM_WAIT: a Go duration from
// MinPlatformWait to MaxPlatformWait. Above the maximum a call's lookups
// would leave no room for its work within the 25 s a call gets (dockerd
// gives it 30 s).
type PlatformWait time.Duration

// The bounds of REXRAY_PLATFORM_WAIT.
const (
	MinPlatformWait = time.Second
	MaxPlatformWait = 20 * time.Second
)

// Decode implements envconfig.Decoder.
func (w *PlatformWait) Decode(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < MinPlatformWait || d > MaxPlatformWait {
		return fmt.Errorf("REXRAY_PLATFORM_WAIT=%q: give a duration from %s to %s, such as 5s or 15s", s, MinPlatformWait, MaxPlatformWait)
	}
	*w = PlatformWait(d)
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

// Service is one configured storage service.
type Service struct {
	Name   string // also the prefix of its driver's settings: FAST_VOLUMEPATH
	Driver string
}

var serviceName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ServiceList is the configured services, the first the default.
func (c Config) ServiceList() ([]Service, error) {
	if len(c.Services) == 0 {
		return []Service{{Name: c.Driver, Driver: c.Driver}}, nil
	}
	var list []Service
	seen := make(map[string]bool)
	for _, entry := range c.Services {
		name, drv, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok {
			drv = c.Driver
		}
		if !serviceName.MatchString(name) {
			return nil, fmt.Errorf("REXRAY_SERVICES: service %q: a name is lower-case letters, digits and _, starting with a letter (it prefixes the service's settings, as FAST_VOLUMEPATH)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("REXRAY_SERVICES: service %q is named twice", name)
		}
		seen[name] = true
		list = append(list, Service{Name: name, Driver: drv})
	}
	return list, nil
}

// Endpoint is REXRAY_HOST taken apart: "unix" and the socket's absolute
// path, or "tcp" and host:port. A relative socket path is refused: it
// would name a socket in whatever folder the process started in.
func (c Config) Endpoint() (network, address string, err error) {
	if path, ok := strings.CutPrefix(c.Host, "unix://"); ok {
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf("REXRAY_HOST=%q: the socket path %q is not absolute; give unix:///path/to.sock (three slashes) or tcp://host:port", c.Host, path)
		}
		return "unix", filepath.Clean(path), nil
	}
	if addr, ok := strings.CutPrefix(c.Host, "tcp://"); ok {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return "", "", fmt.Errorf("REXRAY_HOST=%q: give tcp://host:port or tcp://:port", c.Host)
		}
		return "tcp", addr, nil
	}
	return "", "", fmt.Errorf("REXRAY_HOST=%q: give unix:///path/to.sock or tcp://host:port", c.Host)
}

// HostSet tells whether REXRAY_HOST is set in the environment, rather than
// Host holding its default.
func HostSet() bool {
	_, ok := os.LookupEnv("REXRAY_HOST")
	return ok
}

// Instance is the ID this host goes by on the platforms: REXRAY_INSTANCEID,
// else the host name.
func (c Config) Instance() (string, error) {
	if c.InstanceID != "" {
		return c.InstanceID, nil
	}
	host, err := os.Hostname()
	if err == nil && host == "" {
		err = errors.New("the host has no name")
	}
	if err != nil {
		return "", fmt.Errorf("instance ID: set REXRAY_INSTANCEID: %w", err)
	}
	return host, nil
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

// Setting is one effective setting and where its value came from.
type Setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // "env" or "default"
}

// Settings lists c's settings by their variable names, for `rexray env`.
func (c Config) Settings() []Setting {
	list := Describe("", c)
	return append(list, Describe(OpsPrefix, c.Ops)...)
}

// Describe lists the envconfig-tagged fields of the struct spec, each
// under prefix_TAG (or TAG without a prefix), with its value and whether
// the environment set it. Nested structs are left to their own call. A
// field tagged secret:"true" (a password) shows only whether it is set.
func Describe(prefix string, spec any) []Setting {
	v := reflect.ValueOf(spec)
	t := v.Type()
	var list []Setting
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("envconfig")
		if tag == "" {
			continue
		}
		name := strings.ToUpper(tag)
		if prefix != "" {
			name = strings.ToUpper(prefix) + "_" + name
		}
		s := Setting{Name: name, Value: format(v.Field(i)), Source: "default"}
		if t.Field(i).Tag.Get("secret") == "true" && s.Value != "" {
			s.Value = "(set, not shown)"
		}
		if _, ok := os.LookupEnv(name); ok {
			s.Source = "env"
		}
		list = append(list, s)
	}
	return list
}

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case FileMode:
		return fmt.Sprintf("%04o", uint32(x))
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v.Interface())
}
