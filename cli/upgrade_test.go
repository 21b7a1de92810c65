package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/registry"
)

func str(s string) *string { return &s }

// pluginWith is a plugin as dockerd reports it: the config's mount sources
// and device paths are what `docker plugin set` changed, env and args are in
// the settings.
func pluginWith(store, dev, loglevel string) *types.Plugin {
	p := &types.Plugin{Name: "rexray/loopback:latest"}
	p.Config.Env = []types.PluginEnv{
		{Name: "REXRAY_LOGLEVEL", Settable: []string{"value"}, Value: str("warn")},
		{Name: "FIXED", Value: str("x")},
	}
	p.Config.Mounts = []types.PluginMount{
		{Name: "dev", Source: str("/dev")},
		{Name: "store", Source: str(store), Settable: []string{"source"}},
	}
	p.Config.Linux.Devices = []types.PluginDevice{{Name: "ctl", Path: str(dev), Settable: []string{"path"}}}
	p.Config.Args = types.PluginConfigArgs{Name: "args", Settable: []string{"value"}}
	p.Settings.Env = []string{"REXRAY_LOGLEVEL=" + loglevel, "FIXED=x"}
	p.Settings.Args = []string{"-a", "b"}
	return p
}

func TestSettingsOfIsWhatDockerPluginSetTakes(t *testing.T) {
	got := settingsOf(pluginWith("/srv/store", "/dev/loop-control", "info"))
	want := map[string]string{
		"REXRAY_LOGLEVEL": "info",
		"store.source":    "/srv/store",
		"ctl.path":        "/dev/loop-control",
		"args.value":      "-a b",
	}
	if len(got) != len(want) {
		t.Fatalf("settings %v, want %v (unsettable ones left out)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// What `docker plugin upgrade` puts back to the defaults is set again; what
// it kept is not touched; what the new version lacks is named.
func TestSettingsDiffPutsBackWhatTheUpgradeDropped(t *testing.T) {
	before := settingsOf(pluginWith("/srv/store", "/dev/loop9", "info"))
	before["GONE"] = "1"
	after := settingsOf(pluginWith("/var/lib/rexray/loopback", "/dev/loop-control", "info"))
	set, gone := settingsDiff(before, after)
	if strings.Join(set, " ") != "ctl.path=/dev/loop9 store.source=/srv/store" {
		t.Errorf("set %q", set)
	}
	if strings.Join(gone, " ") != "GONE" {
		t.Errorf("gone %q, want GONE", gone)
	}
	if set, gone := settingsDiff(before, before); len(set) != 0 || len(gone) != 0 {
		t.Errorf("no change: set %q, gone %q", set, gone)
	}
}

// Once the settings are back, the same plugin asks for nothing new; a
// version that adds a capability or a host path does.
func TestNewPrivileges(t *testing.T) {
	old := pluginWith("/srv/store", "/dev/loop-control", "info").Config
	old.Network.Type = "host"
	old.Linux.Capabilities = []string{"CAP_SYS_ADMIN"}
	if added := newPrivileges(privilegesOf(old), privilegesOf(old)); len(added) != 0 {
		t.Errorf("same config: %v", added)
	}
	next := pluginWith("/srv/store", "/dev/loop-control", "info").Config
	next.Network.Type = "host"
	next.Linux.Capabilities = []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}
	next.Mounts = append(next.Mounts, types.PluginMount{Name: "etc", Source: str("/etc")})
	added := newPrivileges(privilegesOf(old), privilegesOf(next))
	if s := privilegeSummary(added); s != "mount=/etc capabilities=CAP_NET_ADMIN" {
		t.Errorf("added %q", s)
	}
	if s := privilegeSummary(withoutPaths(added)); s != "capabilities=CAP_NET_ADMIN" {
		t.Errorf("without paths %q", s)
	}
}

// A mount the new version has but cannot be set back is lost; one it
// dropped is its own choice.
func TestLostSources(t *testing.T) {
	had := pluginWith("/srv/store", "/dev/loop9", "info").Config
	if lost := lostSources(had, had); len(lost) != 0 {
		t.Errorf("same config: %v", lost)
	}
	next := pluginWith("/var/lib/rexray/loopback", "/dev/loop9", "info").Config
	next.Mounts[1].Settable = nil
	lost := lostSources(had, next)
	if len(lost) != 1 || !strings.Contains(lost[0], "mount store is /var/lib/rexray/loopback") || !strings.Contains(lost[0], "/srv/store") {
		t.Errorf("lost %q, want the store named with both paths", lost)
	}
	next.Mounts[0].Source = str("/dev2") // never settable: the version's own
	if lost := lostSources(had, next); len(lost) != 1 {
		t.Errorf("lost %q, want the store alone", lost)
	}
	next.Mounts = next.Mounts[:1]
	next.Linux.Devices = nil
	if lost := lostSources(had, next); len(lost) != 0 {
		t.Errorf("dropped mount and device: %v, want nothing lost", lost)
	}
}

func TestWithout(t *testing.T) {
	if m := without([]string{"a", "b", "c"}, []string{"c", "a", "d"}); strings.Join(m, ",") != "b" {
		t.Errorf("missing %v, want b", m)
	}
}

func TestStepErrorSaysWhatFailedAndWhatIsLeft(t *testing.T) {
	cause := errors.New("boom")
	cases := []struct {
		err  *StepError
		want string
	}{
		{&StepError{Step: "remote", Err: cause}, `step "remote": boom; the plugin was not changed`},
		{&StepError{Step: "enable", Err: cause, touched: true}, `step "enable": boom; the previous plugin is back`},
		{&StepError{Step: "enable", Err: cause, touched: true, Restore: errors.New("pull")}, "restoring the previous plugin failed too: pull"},
	}
	for _, tc := range cases {
		if !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%q lacks %q", tc.err.Error(), tc.want)
		}
		var se *StepError
		if !errors.Is(tc.err, cause) || !errors.As(error(tc.err), &se) {
			t.Errorf("%v: not a StepError wrapping its cause", tc.err)
		}
	}
}

func TestPluginUpgradeArguments(t *testing.T) {
	for _, args := range [][]string{{"plugin"}, {"plugin", "install", "x"}, {"plugin", "upgrade"}, {"plugin", "upgrade", "a", "b", "c"}, {"plugin", "upgrade", "--bogus", "a"}} {
		code, _, stderr := run(context.Background(), args...)
		if code == 0 || !strings.Contains(stderr, "plugin") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

// The credentials `docker login` stored go to dockerd for the registry of
// the reference, Docker Hub's under its index address.
func TestRegistryAuthIsWhatDockerLoginStored(t *testing.T) {
	creds, err := config.LoadFromReader(strings.NewReader(`{"auths": {
		"reg.example:5443": {"auth": "b3A6czNjcmV0"},
		"https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for ref, user := range map[string]string{
		"reg.example:5443/rexray/loopback:2": "op",
		"rexray/loopback":                    "hub",
		"other.example/rexray/loopback":      "",
	} {
		enc, err := registryAuth(creds, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		a, err := registry.DecodeAuthConfig(enc)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if a.Username != user {
			t.Errorf("%s: user %q, want %q", ref, a.Username, user)
		}
	}
	if _, err := registryAuth(creds, "Bad Ref"); err == nil {
		t.Error("a bad reference gave credentials")
	}
}
