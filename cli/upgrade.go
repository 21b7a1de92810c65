package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// dockerAPI is what `rexray plugin upgrade` asks of dockerd.
type dockerAPI interface {
	PluginInspectWithRaw(ctx context.Context, name string) (*types.Plugin, []byte, error)
	PluginDisable(ctx context.Context, name string, options types.PluginDisableOptions) error
	PluginEnable(ctx context.Context, name string, options types.PluginEnableOptions) error
	PluginUpgrade(ctx context.Context, name string, options types.PluginInstallOptions) (io.ReadCloser, error)
	PluginSet(ctx context.Context, name string, args []string) error
	DistributionInspect(ctx context.Context, image, encodedRegistryAuth string) (registry.DistributionInspect, error)
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// enableTimeout is what `docker plugin enable` waits by default.
const enableTimeout = 30

// restoreTimeout bounds putting the previous plugin back, which runs even
// when the command's own context was cancelled half way.
const restoreTimeout = 5 * time.Minute

// StepError is an upgrade step that failed. Restore is nil when the previous
// plugin was put back as it was; otherwise it says what is left to do.
type StepError struct {
	Step    string
	Err     error
	Restore error
	touched bool // the plugin was changed before the step failed
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("upgrade failed at step %q: %v", e.Step, e.Err)
	switch {
	case !e.touched:
		return msg + "; the plugin was not changed"
	case e.Restore != nil:
		return msg + "; restoring the previous plugin failed too: " + e.Restore.Error()
	}
	return msg + "; the previous plugin is back, with its settings"
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrVolumesMissing is a volume listed before the upgrade and not after.
var ErrVolumesMissing = errors.New("volumes listed before the upgrade are not listed after it")

// ErrSourceLost is a mount or device of the new version that cannot be set
// back to the path the installed one used.
var ErrSourceLost = errors.New("the new version cannot be given the mount sources the installed one used")

// ErrNewPrivileges is a new version asking for more than the installed one
// was granted.
var ErrNewPrivileges = errors.New("the new version asks for privileges the installed one was not granted")

// pluginUpgradeUsage is the command's synopsis, as `docker plugin upgrade`'s.
const pluginUpgradeUsage = "plugin upgrade [--grant-all-permissions] [--skip-remote-check] PLUGIN [REMOTE]"

func (c *Command) plugin(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "upgrade" {
		return fmt.Errorf("plugin: give %s", pluginUpgradeUsage)
	}
	fs := flag.NewFlagSet("plugin upgrade", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	u := &upgrader{log: c.Stderr}
	fs.BoolVar(&u.grantAll, "grant-all-permissions", false, "grant the privileges the new version asks for, new ones included")
	fs.BoolVar(&u.skipRemoteCheck, "skip-remote-check", false, "allow a REMOTE of another repository than the plugin's")
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				fmt.Fprintln(c.Stderr, "usage: rexray", pluginUpgradeUsage)
				fs.SetOutput(c.Stderr)
				fs.PrintDefaults()
				return err
			}
			return fmt.Errorf("plugin upgrade: %w; usage: rexray %s", err, pluginUpgradeUsage)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) < 1 || len(pos) > 2 {
		return fmt.Errorf("plugin upgrade takes PLUGIN and an optional REMOTE, got %q; usage: rexray %s", pos, pluginUpgradeUsage)
	}
	remote := ""
	if len(pos) == 2 {
		remote = pos[1]
	}
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client (DOCKER_HOST): %w", err)
	}
	defer api.Close()
	u.api = api
	u.creds = config.LoadDefaultConfigFile(c.Stderr)
	name, ref, err := u.upgrade(ctx, pos[0], remote)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "Upgraded plugin %s to %s\n", name, ref)
	return nil
}

// upgrader runs `rexray plugin upgrade`: one line per step on log.
type upgrader struct {
	api             dockerAPI
	log             io.Writer
	creds           *configfile.ConfigFile // what `docker login` stored
	grantAll        bool
	skipRemoteCheck bool
}

// installed is what the upgrade records of the plugin before it starts.
type installed struct {
	plugin   *types.Plugin
	settings map[string]string // what `docker plugin set` takes: key → value
	volumes  []string
}

func (u *upgrader) step(name, format string, args ...any) {
	fmt.Fprintf(u.log, "%s: %s\n", name, fmt.Sprintf(format, args...))
}

// upgrade returns the plugin's full name and the reference it now runs.
func (u *upgrader) upgrade(ctx context.Context, name, remote string) (string, string, error) {
	fail := func(step string, err error) (string, string, error) {
		return "", "", &StepError{Step: step, Err: err}
	}
	p, _, err := u.api.PluginInspectWithRaw(ctx, name)
	if err != nil {
		return fail("inspect", err)
	}
	old := &installed{plugin: p, settings: settingsOf(p)}
	name = p.Name
	state := "disabled"
	if p.Enabled {
		state = "enabled"
	}
	u.step("inspect", "%s is %s, %s; mounts %s; %d settings recorded", name, dash(p.PluginReference), state, mountSummary(p), len(old.settings))

	if remote == "" {
		remote = p.PluginReference
	}
	if remote == "" {
		return fail("remote", fmt.Errorf("%s has no reference it was installed from: give REMOTE", name))
	}
	if err := u.checkRemote(ctx, p.PluginReference, remote); err != nil {
		return fail("remote", err)
	}
	u.step("remote", "%s found", remote)

	if p.Enabled {
		if old.volumes, err = u.volumes(ctx, name); err != nil {
			return fail("volumes", err)
		}
		u.step("volumes", "%d listed", len(old.volumes))
		users, err := u.containers(ctx, name)
		if err != nil {
			return fail("containers", err)
		}
		if len(users) == 0 {
			u.step("containers", "none running on its volumes")
		} else {
			u.step("containers", "%s keep running on their mounts while the plugin is down", strings.Join(users, ", "))
		}
		if err := u.api.PluginDisable(ctx, name, types.PluginDisableOptions{Force: true}); err != nil {
			return fail("disable", err)
		}
		u.step("disable", "done (forced)")
	} else {
		u.step("volumes", "not listed: the plugin is disabled, and stays so")
	}

	// From here on the plugin has changed: a failed step puts it back.
	if step, err := u.change(ctx, old, remote); err != nil {
		serr := &StepError{Step: step, Err: err, touched: true}
		serr.Restore = u.restore(ctx, old)
		return "", "", serr
	}
	return name, remote, nil
}

// change upgrades a disabled plugin to remote and brings it back as it was;
// it returns the step that failed.
func (u *upgrader) change(ctx context.Context, old *installed, remote string) (string, error) {
	name := old.plugin.Name
	granted, err := u.pull(ctx, name, remote, privilegesOf(old.plugin.Config))
	if err != nil {
		return "upgrade", err
	}
	u.step("upgrade", "now %s; it asks %s (mount sources as its defaults, set back next)", remote, privilegeSummary(granted))

	p, put, err := u.putBack(ctx, "settings", name, old.settings)
	if err != nil {
		return "settings", err
	}
	if len(put) == 0 {
		u.step("settings", "nothing to put back")
	} else {
		u.step("settings", "put back %s", strings.Join(put, " "))
	}
	if lost := lostSources(old.plugin.Config, p.Config); len(lost) > 0 {
		return "settings", fmt.Errorf("%w: %s", ErrSourceLost, strings.Join(lost, "; "))
	}
	if added := newPrivileges(privilegesOf(old.plugin.Config), privilegesOf(p.Config)); len(added) > 0 {
		if !u.grantAll {
			return "privileges", fmt.Errorf("%w: %s (give --grant-all-permissions to grant them)", ErrNewPrivileges, privilegeSummary(added))
		}
		u.step("privileges", "granted new %s", privilegeSummary(added))
	}

	if !old.plugin.Enabled {
		return "", nil
	}
	if err := u.api.PluginEnable(ctx, name, types.PluginEnableOptions{Timeout: enableTimeout}); err != nil {
		return "enable", err
	}
	u.step("enable", "done")
	after, err := u.volumes(ctx, name)
	if err != nil {
		return "volumes", err
	}
	if missing := without(old.volumes, after); len(missing) > 0 {
		return "volumes", fmt.Errorf("%w: %s", ErrVolumesMissing, strings.Join(missing, ", "))
	}
	u.step("volumes", "all %d listed again (%d now)", len(old.volumes), len(after))
	return "", nil
}

// checkRemote refuses a remote of another repository, as `docker plugin
// upgrade` asks before it, and makes sure the remote exists before the
// plugin is stopped for it.
func (u *upgrader) checkRemote(ctx context.Context, current, remote string) error {
	r, err := reference.ParseNormalizedNamed(remote)
	if err != nil {
		return fmt.Errorf("REMOTE %q: %w", remote, err)
	}
	if c, err := reference.ParseNormalizedNamed(current); err == nil && !u.skipRemoteCheck && c.Name() != r.Name() {
		return fmt.Errorf("REMOTE %s is not of the repository the plugin was installed from, %s (give --skip-remote-check to upgrade anyway)", reference.FamiliarName(r), reference.FamiliarName(c))
	}
	auth, err := registryAuth(u.creds, remote)
	if err != nil {
		return err
	}
	if _, err := u.api.DistributionInspect(ctx, remote, auth); err != nil {
		return fmt.Errorf("REMOTE %s: %w", remote, err)
	}
	return nil
}

// pull swaps the plugin's rootfs and config for remote's. The privileges
// dockerd reports for remote carry the new version's default mount sources,
// which putBack replaces: here only the kinds without a host path are
// compared, and all of them once the settings are back.
func (u *upgrader) pull(ctx context.Context, name, remote string, had types.PluginPrivileges) (types.PluginPrivileges, error) {
	var asked types.PluginPrivileges
	accept := func(_ context.Context, p types.PluginPrivileges) (bool, error) {
		asked = p
		if added := newPrivileges(withoutPaths(had), withoutPaths(p)); len(added) > 0 && !u.grantAll {
			return false, fmt.Errorf("%w: %s (give --grant-all-permissions to grant them)", ErrNewPrivileges, privilegeSummary(added))
		}
		return true, nil
	}
	auth, err := registryAuth(u.creds, remote)
	if err != nil {
		return nil, err
	}
	body, err := u.api.PluginUpgrade(ctx, name, types.PluginInstallOptions{RemoteRef: remote, RegistryAuth: auth, AcceptPermissionsFunc: accept})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	// Progress is not shown; an error dockerd reports in the stream is.
	if err := jsonmessage.DisplayJSONMessagesStream(body, io.Discard, 0, false, nil); err != nil {
		return nil, err
	}
	return asked, nil
}

// putBack sets what the upgrade dropped, and returns the plugin as it then
// is and the settings it set. A setting the new version does not have, or
// does not let be set, is reported, not set: dockerd would refuse it.
func (u *upgrader) putBack(ctx context.Context, step, name string, want map[string]string) (*types.Plugin, []string, error) {
	p, _, err := u.api.PluginInspectWithRaw(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	set, gone := settingsDiff(want, settingsOf(p))
	if len(gone) > 0 {
		u.step(step, "this version cannot set %s", strings.Join(gone, " "))
	}
	if len(set) == 0 {
		return p, nil, nil
	}
	if err := u.api.PluginSet(ctx, name, set); err != nil {
		return nil, nil, fmt.Errorf("docker plugin set %s: %w", strings.Join(set, " "), err)
	}
	p, _, err = u.api.PluginInspectWithRaw(ctx, name)
	return p, set, err
}

// restore puts the previous plugin back: its version when the upgrade
// swapped it, its settings, and its state. When the previous version cannot
// be fetched again, the previous settings still go back on the one it has.
func (u *upgrader) restore(ctx context.Context, old *installed) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	name, ref := old.plugin.Name, old.plugin.PluginReference
	p, _, err := u.api.PluginInspectWithRaw(ctx, name)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	if p.Enabled {
		if err := u.api.PluginDisable(ctx, name, types.PluginDisableOptions{Force: true}); err != nil {
			return fmt.Errorf("disable %s: %w", name, err)
		}
	}
	var notBack error
	if p.PluginReference != ref || !reflect.DeepEqual(withoutSources(p.Config), withoutSources(old.plugin.Config)) {
		if err := u.pullBack(ctx, name, ref); err != nil {
			notBack = fmt.Errorf("upgrade back to %s: %w", ref, err)
			u.step("restore", "%v; the previous settings go on %s instead", notBack, p.PluginReference)
		} else {
			u.step("restore", "back on %s", ref)
		}
	}
	if _, put, err := u.putBack(ctx, "restore", name, old.settings); err != nil {
		return errors.Join(notBack, fmt.Errorf("settings: %w", err))
	} else if len(put) > 0 {
		u.step("restore", "put back %s", strings.Join(put, " "))
	}
	if !old.plugin.Enabled {
		u.step("restore", "left disabled, as it was")
		return notBack
	}
	if err := u.api.PluginEnable(ctx, name, types.PluginEnableOptions{Timeout: enableTimeout}); err != nil {
		return errors.Join(notBack, fmt.Errorf("enable %s: %w", name, err))
	}
	if notBack != nil {
		return fmt.Errorf("%w; %s is enabled on %s with the previous settings", notBack, name, p.PluginReference)
	}
	u.step("restore", "%s enabled again on %s", name, ref)
	return nil
}

// pullBack upgrades the plugin to the version it had, whose privileges were
// granted when it was installed.
func (u *upgrader) pullBack(ctx context.Context, name, ref string) error {
	if ref == "" {
		return errors.New("the plugin had no reference to fetch it from")
	}
	auth, err := registryAuth(u.creds, ref)
	if err != nil {
		return err
	}
	body, err := u.api.PluginUpgrade(ctx, name, types.PluginInstallOptions{RemoteRef: ref, RegistryAuth: auth, AcceptAllPermissions: true})
	if err != nil {
		return err
	}
	defer body.Close()
	return jsonmessage.DisplayJSONMessagesStream(body, io.Discard, 0, false, nil)
}

// withoutSources is a config with the settable values cleared, which `docker
// plugin set` changes without changing the version.
func withoutSources(c types.PluginConfig) types.PluginConfig {
	b, _ := json.Marshal(c)
	var cp types.PluginConfig
	json.Unmarshal(b, &cp)
	for i := range cp.Mounts {
		cp.Mounts[i].Source = nil
	}
	for i := range cp.Linux.Devices {
		cp.Linux.Devices[i].Path = nil
	}
	return cp
}

// dockerHubKey is where `docker login` keeps Docker Hub's credentials.
const dockerHubKey = "https://index.docker.io/v1/"

// registryAuth is the credential `docker login` stored for ref's registry
// (in config.json, a credsStore or a credHelper), encoded as dockerd takes
// it; with none stored, dockerd pulls anonymously.
func registryAuth(creds *configfile.ConfigFile, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%q: %w", ref, err)
	}
	key := reference.Domain(named)
	if key == "docker.io" {
		key = dockerHubKey
	}
	a, err := creds.GetAuthConfig(key)
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", key, err)
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		ServerAddress: a.ServerAddress,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// volumes lists the names of the plugin's volumes, as dockerd reports them.
func (u *upgrader) volumes(ctx context.Context, driver string) ([]string, error) {
	resp, err := u.api.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", driver))})
	if err != nil {
		return nil, err
	}
	if len(resp.Warnings) > 0 {
		return nil, fmt.Errorf("volume list: %s", strings.Join(resp.Warnings, "; "))
	}
	names := make([]string, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	return names, nil
}

// containers lists the running containers that mount the plugin's volumes:
// "name (volume, ...)".
func (u *upgrader) containers(ctx context.Context, driver string) ([]string, error) {
	list, err := u.api.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, err
	}
	var users []string
	for _, c := range list {
		var vols []string
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Driver == driver {
				vols = append(vols, m.Name)
			}
		}
		if len(vols) > 0 {
			cname := c.ID[:min(12, len(c.ID))]
			if len(c.Names) > 0 {
				cname = strings.TrimPrefix(c.Names[0], "/")
			}
			users = append(users, fmt.Sprintf("%s (%s)", cname, strings.Join(vols, ", ")))
		}
	}
	return users, nil
}

// settingsOf is every value `docker plugin set` can change on p, keyed as
// it takes them: NAME for an env, MOUNT.source, DEVICE.path, ARGS.value.
func settingsOf(p *types.Plugin) map[string]string {
	s := map[string]string{}
	env := map[string]string{}
	for _, kv := range p.Settings.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, e := range p.Config.Env {
		if v, ok := env[e.Name]; ok && slices.Contains(e.Settable, "value") {
			s[e.Name] = v
		}
	}
	for _, m := range p.Config.Mounts {
		if m.Name != "" && m.Source != nil && slices.Contains(m.Settable, "source") {
			s[m.Name+".source"] = *m.Source
		}
	}
	for _, d := range p.Config.Linux.Devices {
		if d.Name != "" && d.Path != nil && slices.Contains(d.Settable, "path") {
			s[d.Name+".path"] = *d.Path
		}
	}
	if a := p.Config.Args; a.Name != "" && slices.Contains(a.Settable, "value") {
		s[a.Name+".value"] = strings.Join(p.Settings.Args, " ")
	}
	return s
}

// lostSources names the settable mounts and devices of had that want also
// has with another host path: the new version would serve something else.
// A mount or device the new version dropped, or one that was never
// settable, is the version's own choice (and its privileges say so).
func lostSources(had, want types.PluginConfig) []string {
	var lost []string
	check := func(kind, name string, was, now *string) {
		if was != nil && now != nil && *was != *now {
			lost = append(lost, fmt.Sprintf("%s %s is %s in this version, which cannot be set back to %s", kind, name, *now, *was))
		}
	}
	for _, m := range had.Mounts {
		for _, n := range want.Mounts {
			if n.Name == m.Name && slices.Contains(m.Settable, "source") {
				check("mount", m.Name, m.Source, n.Source)
			}
		}
	}
	for _, d := range had.Linux.Devices {
		for _, n := range want.Linux.Devices {
			if d.Name != "" && n.Name == d.Name && slices.Contains(d.Settable, "path") {
				check("device", d.Name, d.Path, n.Path)
			}
		}
	}
	return lost
}

// settingsDiff returns the `docker plugin set` arguments that turn have into
// want, and the keys of want that have does not know.
func settingsDiff(want, have map[string]string) (set, gone []string) {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := have[k]
		switch {
		case !ok:
			gone = append(gone, k)
		case v != want[k]:
			set = append(set, k+"="+want[k])
		}
	}
	return set, gone
}

// privilegesOf is what a plugin of config c is granted, as dockerd
// computes it from a config: its network, namespaces, mounts, devices and
// capabilities.
func privilegesOf(c types.PluginConfig) types.PluginPrivileges {
	var p types.PluginPrivileges
	add := func(name string, values ...string) {
		p = append(p, types.PluginPrivilege{Name: name, Value: values})
	}
	if t := c.Network.Type; t != "" && t != "null" && t != "bridge" {
		add("network", t)
	}
	if c.IpcHost {
		add("host ipc namespace", "true")
	}
	if c.PidHost {
		add("host pid namespace", "true")
	}
	for _, m := range c.Mounts {
		if m.Source != nil {
			add("mount", *m.Source)
		}
	}
	for _, d := range c.Linux.Devices {
		if d.Path != nil {
			add("device", *d.Path)
		}
	}
	if c.Linux.AllowAllDevices {
		add("allow-all-devices", "true")
	}
	if len(c.Linux.Capabilities) > 0 {
		add("capabilities", c.Linux.Capabilities...)
	}
	return p
}

// newPrivileges is what want holds that had does not, value by value.
func newPrivileges(had, want types.PluginPrivileges) types.PluginPrivileges {
	granted := map[string]bool{}
	for _, p := range had {
		for _, v := range p.Value {
			granted[p.Name+"\x00"+v] = true
		}
	}
	var added types.PluginPrivileges
	for _, p := range want {
		var vals []string
		for _, v := range p.Value {
			if !granted[p.Name+"\x00"+v] {
				vals = append(vals, v)
			}
		}
		if len(vals) > 0 {
			added = append(added, types.PluginPrivilege{Name: p.Name, Value: vals})
		}
	}
	return added
}

// withoutPaths drops the privileges whose value is a host path.
func withoutPaths(ps types.PluginPrivileges) types.PluginPrivileges {
	var out types.PluginPrivileges
	for _, p := range ps {
		if p.Name != "mount" && p.Name != "device" {
			out = append(out, p)
		}
	}
	return out
}

func privilegeSummary(ps types.PluginPrivileges) string {
	if len(ps) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, p.Name+"="+strings.Join(p.Value, ","))
	}
	return strings.Join(parts, " ")
}

func mountSummary(p *types.Plugin) string {
	var parts []string
	for _, m := range p.Config.Mounts {
		if m.Source != nil {
			parts = append(parts, m.Name+"="+*m.Source)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// without is what before lists that after does not.
func without(before, after []string) []string {
	listed := make(map[string]bool, len(after))
	for _, v := range after {
		listed[v] = true
	}
	var missing []string
	for _, v := range before {
		if !listed[v] {
			missing = append(missing, v)
		}
	}
	return missing
}
