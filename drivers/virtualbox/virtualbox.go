// Package virtualbox is the VirtualBox driver: a volume is a VMDK disk image
// in a folder of the VirtualBox host, attached to this guest's SATA
// controller through VirtualBox's web service (vboxwebsrv, SOAP over HTTP).
//
// VirtualBox cannot run on the machines this project is tested on, so the
// driver is written against the web service's WSDL and tested against a
// fake of the web service; see the README.
package virtualbox

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
)

// Name is the driver's registry name.
const Name = "virtualbox"

// Config is read from <SERVICE>_* environment variables: VIRTUALBOX_* for
// the default service. The names are REX-Ray's.
type Config struct {
	// Endpoint is vboxwebsrv's address; the default is the VirtualBox host
	// as a guest on a NAT network sees it.
	Endpoint string `envconfig:"ENDPOINT" default:"http://10.0.2.2:18083"`
	Username string `envconfig:"USERNAME"`
	Password string `envconfig:"PASSWORD" secret:"true"`
	// TLS talks HTTPS to the endpoint (an http:// ENDPOINT is upgraded).
	TLS bool `envconfig:"TLS"`
	// VolumePath is the folder on the VirtualBox host that holds the
	// volumes' disk images.
	VolumePath string `envconfig:"VOLUMEPATH"`
	// ControllerName is this VM's storage controller that volumes are
	// attached to.
	ControllerName string `envconfig:"CONTROLLERNAME" default:"SATA"`
	// LocalMachineNameOrID names this VM; empty finds it by the MAC
	// addresses of this host's network interfaces.
	LocalMachineNameOrID string `envconfig:"LOCALMACHINENAMEORID"`
	// DeviceWait bounds the wait for an attached disk to appear in /dev.
	DeviceWait time.Duration `envconfig:"DEVICEWAIT" default:"30s"`
}

// Driver implements drivers.Driver over a VirtualBox host.
type Driver struct {
	cfg      Config
	settings []config.Setting
	ws       *websession
	guest    guest

	// machineMu serialises machine locks: the web session has one ISession
	// object, and it can lock one machine at a time.
	machineMu sync.Mutex

	idMu sync.Mutex
	id   string // this VM's machine UUID, once found
}

// FromEnv builds a service's driver from its <SERVICE>_* variables.
func FromEnv(ctx context.Context, s drivers.Settings) (drivers.Driver, error) {
	var cfg Config
	if err := envconfig.Process(s.Service, &cfg); err != nil {
		return nil, fmt.Errorf("virtualbox settings: %w", err)
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d.settings = config.Describe(s.Service, cfg)
	return d, nil
}

// New builds a driver. It does not contact the service: VirtualBox may be
// reachable only later, and Docker waits for the plugin's socket. Nor does
// it refuse a missing VIRTUALBOX_VOLUMEPATH: a plugin that will not start
// tells the user nothing, so each volume operation says what to set.
func New(cfg Config) (*Driver, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("VIRTUALBOX_ENDPOINT %q is not an http:// or https:// address such as http://10.0.2.2:18083", cfg.Endpoint)
	}
	if cfg.TLS {
		u.Scheme = "https"
	}
	if cfg.ControllerName == "" {
		return nil, errors.New("VIRTUALBOX_CONTROLLERNAME is empty: name this VM's storage controller, such as SATA")
	}
	// Every call is short (progress is waited for in slices), so a call
	// that hangs is lost; an endpoint that drops packets (10.0.2.2 outside
	// a NAT guest) must fail in seconds, not hold up the plugin's start.
	client := &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			DialContext:     (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		},
	}
	return &Driver{
		cfg:   cfg,
		ws:    &websession{soap: &soap{endpoint: u.String(), http: client}, username: cfg.Username, password: cfg.Password},
		guest: guest{byID: "/dev/disk/by-id", scsiHosts: "/sys/class/scsi_host", wait: cfg.DeviceWait},
	}, nil
}

// Settings implements drivers.Configured.
func (d *Driver) Settings() []config.Setting { return d.settings }

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

var errNoVolumePath = errors.New("VIRTUALBOX_VOLUMEPATH is not set: set it (docker plugin set rexray/virtualbox VIRTUALBOX_VOLUMEPATH=...) to the folder on the VirtualBox host that holds the volumes' disk images, such as /Users/me/VirtualBox/Volumes")

// do runs a volume operation in the web session.
func (d *Driver) do(ctx context.Context, f func(*op) error) error {
	if d.cfg.VolumePath == "" {
		return errNoVolumePath
	}
	return d.ws.do(ctx, f)
}

// description is what rexray writes in a medium's description: the
// volume's drivers.Meta, wrapped so that a description someone else wrote
// is told apart.
type description struct {
	Rexray *drivers.Meta `json:"rexray"`
}

// medium is a hard disk under the volume path.
type medium struct {
	ref      string
	id       string
	name     string
	location string
	size     int64
	meta     drivers.Meta
	machines []string // IDs of the machines it is attached to
}

const imageExt = ".vmdk"

// location is where volume name's image lives on the VirtualBox host, with
// the host's own separator (a Windows host's path has backslashes).
func (d *Driver) location(name string) string {
	sep := "/"
	if strings.Contains(d.cfg.VolumePath, `\`) {
		sep = `\`
	}
	return strings.TrimRight(d.cfg.VolumePath, sep) + sep + name + imageExt
}

// volumeName is the volume whose image is at location, if any.
func (d *Driver) volumeName(location string) (string, bool) {
	dir, file := location[:strings.LastIndexAny(location, `/\`)+1], location[strings.LastIndexAny(location, `/\`)+1:]
	if strings.TrimRight(dir, `/\`) != strings.TrimRight(d.cfg.VolumePath, `/\`) || !strings.HasSuffix(file, imageExt) {
		return "", false
	}
	name := strings.TrimSuffix(file, imageExt)
	return name, drivers.ValidateName(name) == nil
}

// media lists the hard disks under the volume path; with only set, just the
// one of that volume.
func (d *Driver) media(ctx context.Context, o *op, only string) ([]medium, error) {
	refs, err := o.objects(ctx, "IVirtualBox_getHardDisks", p("_this", o.vbox))
	if err != nil {
		return nil, fmt.Errorf("list hard disks: %w", err)
	}
	var list []medium
	for _, ref := range refs {
		loc, err := o.value(ctx, "IMedium_getLocation", p("_this", ref))
		if err != nil {
			return nil, fmt.Errorf("list hard disks: %w", err)
		}
		name, ok := d.volumeName(loc)
		if !ok || (only != "" && name != only) {
			continue
		}
		m, err := d.describe(ctx, o, ref, name, loc)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", name, err)
		}
		list = append(list, m)
	}
	return list, nil
}

func (d *Driver) describe(ctx context.Context, o *op, ref, name, loc string) (medium, error) {
	m := medium{ref: ref, name: name, location: loc}
	var err error
	if m.id, err = o.value(ctx, "IMedium_getId", p("_this", ref)); err != nil {
		return m, err
	}
	size, err := o.value(ctx, "IMedium_getLogicalSize", p("_this", ref))
	if err != nil {
		return m, err
	}
	if _, err := fmt.Sscan(size, &m.size); err != nil {
		return m, fmt.Errorf("logical size %q: %w", size, err)
	}
	desc, err := o.value(ctx, "IMedium_getDescription", p("_this", ref))
	if err != nil {
		return m, err
	}
	var dd description
	if json.Unmarshal([]byte(desc), &dd) == nil && dd.Rexray != nil {
		m.meta = *dd.Rexray
	}
	var ids values
	if err := o.call(ctx, "IMedium_getMachineIds", &ids, p("_this", ref)); err != nil {
		return m, err
	}
	m.machines = ids.Returnval
	return m, nil
}

// find is volume name's medium.
func (d *Driver) find(ctx context.Context, o *op, name string) (medium, error) {
	list, err := d.media(ctx, o, name)
	if err != nil {
		return medium{}, err
	}
	if len(list) == 0 {
		return medium{}, fmt.Errorf("volume %s: %w", name, drivers.ErrNotFound)
	}
	return list[0], nil
}

func (d *Driver) volume(m medium) drivers.Volume {
	v := drivers.Volume{
		Name:   m.name,
		Size:   m.size,
		Meta:   m.meta,
		Fields: map[string]string{"mediumID": m.id, "location": m.location},
	}
	if len(m.machines) > 0 {
		v.Fields["attachedTo"] = strings.Join(m.machines, ",")
	}
	return v
}

// volumeHere is m's volume as this VM sees it: with its device while it
// is attached here, which the engine mounts again after a restart.
func (d *Driver) volumeHere(ctx context.Context, o *op, m medium) (drivers.Volume, error) {
	v := d.volume(m)
	if len(m.machines) == 0 {
		return v, nil // no need to know this VM, which may be misconfigured
	}
	_, selfID, err := d.self(ctx, o)
	if err != nil {
		return v, err
	}
	if slices.Contains(m.machines, selfID) {
		v.Device = d.guest.find(m.id)
	}
	return v, nil
}

// List implements drivers.Driver.
func (d *Driver) List(ctx context.Context) ([]drivers.Volume, error) {
	var vols []drivers.Volume
	err := d.do(ctx, func(o *op) error {
		list, err := d.media(ctx, o, "")
		if err != nil {
			return err
		}
		vols = vols[:0]
		for _, m := range list {
			v, err := d.volumeHere(ctx, o, m)
			if err != nil {
				return err
			}
			vols = append(vols, v)
		}
		return nil
	})
	return vols, err
}

// Inspect implements drivers.Driver.
func (d *Driver) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	var v drivers.Volume
	err := d.do(ctx, func(o *op) error {
		m, err := d.find(ctx, o, name)
		if err != nil {
			return err
		}
		v, err = d.volumeHere(ctx, o, m)
		return err
	})
	return v, err
}

var errNoSnapshots = fmt.Errorf("the virtualbox driver has no volume snapshots (VirtualBox snapshots whole machines); copy a volume with the volumeName option instead: %w", drivers.ErrUnsupported)

// Create implements drivers.Driver: a dynamically allocated VMDK image, or
// a clone of another volume's.
func (d *Driver) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume: %w", err)
	}
	switch {
	case opts.Pool != "":
		return drivers.Volume{}, fmt.Errorf("create volume %s: the virtualbox driver has no pools (pool=%s); leave the option out", name, opts.Pool)
	case opts.FromSnapshot != "":
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, errNoSnapshots)
	case opts.Size < 0:
		return drivers.Volume{}, fmt.Errorf("create volume %s: negative size", name)
	}
	var v drivers.Volume
	err := d.do(ctx, func(o *op) error {
		var err error
		v, err = d.create(ctx, o, name, opts)
		return err
	})
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, nil
}

func (d *Driver) create(ctx context.Context, o *op, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if _, err := d.find(ctx, o, name); err == nil {
		return drivers.Volume{}, drivers.ErrExists
	} else if !errors.Is(err, drivers.ErrNotFound) {
		return drivers.Volume{}, err
	}
	meta := drivers.NewMeta(opts)
	var src medium
	if opts.FromVolume != "" {
		var err error
		if src, err = d.find(ctx, o, opts.FromVolume); err != nil {
			return drivers.Volume{}, fmt.Errorf("copy of %s: %w", opts.FromVolume, err)
		}
		if opts.Size != 0 && opts.Size < src.size {
			return drivers.Volume{}, fmt.Errorf("copy of %s: size %d bytes is smaller than the source's %d", opts.FromVolume, opts.Size, src.size)
		}
		if meta.FSType == "" {
			meta.FSType = src.meta.FSType
		}
	}
	loc := d.location(name)
	ref, err := o.object(ctx, "IVirtualBox_createMedium", p("_this", o.vbox),
		p("format", "VMDK"), p("location", loc), p("accessMode", "ReadWrite"), p("aDeviceTypeType", "HardDisk"))
	if err != nil {
		return drivers.Volume{}, err
	}
	if err := d.fill(ctx, o, ref, src, opts.Size, meta); err != nil {
		d.discard(ctx, o, ref)
		return drivers.Volume{}, err
	}
	m, err := d.describe(ctx, o, ref, name, loc)
	return d.volume(m), err
}

// fill makes the new medium's storage: empty, or a copy of src.
func (d *Driver) fill(ctx context.Context, o *op, ref string, src medium, size int64, meta drivers.Meta) error {
	variant := p("variant", []string{"Standard"})
	if src.ref == "" {
		progress, err := o.object(ctx, "IMedium_createBaseStorage", p("_this", ref), p("logicalSize", size), variant)
		if err != nil {
			return err
		}
		if err := o.wait(ctx, progress, "create the disk image"); err != nil {
			return err
		}
	} else {
		progress, err := o.object(ctx, "IMedium_cloneTo", p("_this", src.ref), p("target", ref), variant, p("parent", ""))
		if err != nil {
			return err
		}
		if err := o.wait(ctx, progress, "copy "+src.name); err != nil {
			return err
		}
		if size > src.size {
			progress, err := o.object(ctx, "IMedium_resize", p("_this", ref), p("logicalSize", size))
			if err != nil {
				return err
			}
			if err := o.wait(ctx, progress, "resize the copy"); err != nil {
				return err
			}
		}
	}
	desc, err := json.Marshal(description{Rexray: &meta})
	if err != nil {
		return err
	}
	return o.call(ctx, "IMedium_setDescription", nil, p("_this", ref), p("description", string(desc)))
}

// discard undoes a create that failed part way: the image goes, and the
// medium is forgotten, so that nothing half-made is left on the host.
func (d *Driver) discard(ctx context.Context, o *op, ref string) {
	ctx = context.WithoutCancel(ctx)
	if progress, err := o.object(ctx, "IMedium_deleteStorage", p("_this", ref)); err == nil {
		if o.wait(ctx, progress, "delete") == nil {
			return
		}
	}
	// No storage was made (the create itself failed): just unregister.
	_ = o.call(ctx, "IMedium_close", nil, p("_this", ref))
}

// Remove implements drivers.Driver. A volume attached to any machine is
// refused: deleting it would pull the disk from under that machine.
func (d *Driver) Remove(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	err := d.do(ctx, func(o *op) error {
		m, err := d.find(ctx, o, name)
		if err != nil {
			return err
		}
		if len(m.machines) > 0 {
			return fmt.Errorf("attached to machine %s; unmount it there first", strings.Join(d.machineNames(ctx, o, m.machines), ", "))
		}
		progress, err := o.object(ctx, "IMedium_deleteStorage", p("_this", m.ref))
		if err != nil {
			return err
		}
		return o.wait(ctx, progress, "delete the disk image")
	})
	if err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return err
}

// machineNames names machines by their IDs, for messages; an ID stays as
// it is when its name cannot be had.
func (d *Driver) machineNames(ctx context.Context, o *op, ids []string) []string {
	names := slices.Clone(ids)
	for i, id := range ids {
		if ref, err := o.object(ctx, "IVirtualBox_findMachine", p("_this", o.vbox), p("nameOrId", id)); err == nil {
			if n, err := o.value(ctx, "IMachine_getName", p("_this", ref)); err == nil && n != "" {
				names[i] = fmt.Sprintf("%s (%s)", n, id)
			}
		}
	}
	return names
}

// RecordFormat implements drivers.FormatRecorder, in the medium's
// description.
func (d *Driver) RecordFormat(ctx context.Context, name string, at time.Time) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	err := d.do(ctx, func(o *op) error {
		m, err := d.find(ctx, o, name)
		if err != nil {
			return err
		}
		meta := m.meta.FormatRecord(at)
		desc, err := json.Marshal(description{Rexray: &meta})
		if err != nil {
			return err
		}
		return o.call(ctx, "IMedium_setDescription", nil, p("_this", m.ref), p("description", string(desc)))
	})
	if err != nil {
		return fmt.Errorf("record the filesystem of volume %s: %w", name, err)
	}
	return nil
}
