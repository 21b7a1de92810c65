//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// upgraded is a plugin installed for the upgrade tests alone, with mount
// sources of its own: an upgrade that loses them is seen at once.
type upgraded struct {
	alias        string
	store, state string // private mount sources
	keeper       bool   // a container runs on the volume throughout
}

// installPrivate installs the suite's plugin under alias with private mount
// sources and a changed env, enabled, with a volume that holds data and
// (keeper) a running container on it; all of it is removed when the test
// ends.
func installPrivate(t *testing.T, alias, vol string, keeper bool) upgraded {
	t.Helper()
	base := filepath.Join(suite.dir, strings.ReplaceAll(strings.Split(alias, ":")[0], "/", "-"))
	u := upgraded{alias: alias, store: filepath.Join(base, "store"), state: filepath.Join(base, "state"), keeper: keeper}
	for _, d := range []string{u.store, u.state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustDocker(t, "plugin", "install", "--grant-all-permissions", "--disable", "--alias", alias, suite.registry+"/rexray/loopback:test")
	t.Cleanup(func() {
		suite.docker("rm", "-f", "keeper-"+vol)
		// Removing the volume needs the plugin on its private store, which
		// a failed step may have lost: put it back first.
		suite.docker("plugin", "disable", "-f", alias)
		suite.docker("plugin", "set", alias, "store.source="+u.store, "state.source="+u.state)
		suite.docker("plugin", "enable", alias)
		suite.docker("volume", "rm", "-f", vol)
		suite.docker("plugin", "rm", "-f", alias)
		for _, dev := range loopsUnder(u.store) {
			t.Errorf("loop device %s left attached; detaching it", dev)
			exec.Command("losetup", "-d", dev).Run()
		}
		os.RemoveAll(base)
	})
	mustDocker(t, "plugin", "set", alias, "store.source="+u.store, "state.source="+u.state, "REXRAY_LOGLEVEL=info")
	mustDocker(t, "plugin", "enable", alias)
	mustDocker(t, "volume", "create", "-d", alias, "-o", "size=64MiB", vol)
	mustDocker(t, "run", "--rm", "-v", vol+":/data", "busybox", "sh", "-c", "echo kept-across-upgrades > /data/f")
	if keeper {
		mustDocker(t, "run", "-d", "--name", "keeper-"+vol, "-v", vol+":/data", "busybox", "sleep", "600")
	}
	return u
}

// pushVariant pushes the suite's plugin with its config changed by edit to
// the registry under tag, and returns its reference.
func pushVariant(t *testing.T, tag string, edit func(cfg map[string]any)) string {
	t.Helper()
	src := filepath.Join(suite.repo, "build", "plugin")
	dir := filepath.Join(suite.dir, "variant-"+tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command("cp", "-a", filepath.Join(src, "rootfs"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp rootfs: %v: %s", err, out)
	}
	// A layer of its own: dockerd refuses to create a plugin whose layer
	// an installed plugin already holds.
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "etc", "rexray-variant"), []byte(tag+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := suite.registry + "/rexray/loopback:" + tag
	mustDocker(t, "plugin", "create", ref, dir)
	defer suite.docker("plugin", "rm", "-f", ref)
	mustDocker(t, "plugin", "push", ref)
	return ref
}

// v2 is the next version: another description, and default mount sources
// of the test's own (created or not by the test), so that what Docker falls
// back to is seen without touching the host's /var/lib/rexray.
func v2(defaults string) func(cfg map[string]any) {
	return func(cfg map[string]any) {
		cfg["description"] = cfg["description"].(string) + " (v2)"
		for _, m := range cfg["mounts"].([]any) {
			m := m.(map[string]any)
			if name := m["name"]; name == "store" || name == "state" {
				m["source"] = filepath.Join(defaults, name.(string))
			}
		}
	}
}

// rexrayUpgrade runs the host CLI's plugin upgrade against the suite's
// dockerd, through DOCKER_HOST as an operator would.
func rexrayUpgrade(args ...string) (string, string, error) {
	cmd := exec.Command(filepath.Join(suite.repo, "bin", "rexray"), append([]string{"plugin", "upgrade"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+suite.host)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// keeps asserts the plugin is enabled on ref with its private sources and
// env, and the volume is listed and holds its data, for a new container and
// for the one that ran through the upgrade.
func (u upgraded) keeps(t *testing.T, ref, vol string) {
	t.Helper()
	got := mustDocker(t, "plugin", "inspect", "--format",
		`{{.Enabled}} {{.PluginReference}} {{range .Config.Mounts}}{{.Name}}={{.Source}} {{end}}{{range .Settings.Env}}{{.}} {{end}}`, u.alias)
	for _, want := range []string{"true " + ref + " ", "store=" + u.store + " ", "state=" + u.state + " ", "REXRAY_LOGLEVEL=info "} {
		if !strings.Contains(got+" ", want) {
			t.Errorf("plugin inspect: %q lacks %q", got, want)
		}
	}
	if out := mustDocker(t, "volume", "ls", "-q", "--filter", "driver="+u.alias); out != vol {
		t.Errorf("volume ls: %q, want %s", out, vol)
	}
	if out, err := suite.docker("run", "--rm", "-v", vol+":/data", "busybox", "cat", "/data/f"); out != "kept-across-upgrades" {
		t.Errorf("a new container reads %q (%v), want the data written before", out, err)
	}
	if !u.keeper {
		return
	}
	if out, err := suite.docker("exec", "keeper-"+vol, "cat", "/data/f"); out != "kept-across-upgrades" {
		t.Errorf("the container that ran through it reads %q (%v)", out, err)
	}
}

// TestPluginUpgrade: plain `docker plugin upgrade` puts the mount sources
// back to the new config's defaults (enable fails where they do not exist,
// and serves another store where they do); `rexray plugin upgrade` keeps
// them, and with them every volume.
func TestPluginUpgrade(t *testing.T) {
	defaults := filepath.Join(suite.dir, "upgrade-defaults")
	next := pushVariant(t, "v2", v2(defaults))
	t.Cleanup(func() { os.RemoveAll(defaults) })

	t.Run("DockerAloneLosesTheSources", func(t *testing.T) {
		const alias = "rexray/plain:latest"
		// No container across it: its Unmount would reach the plugin on the
		// wrong ledger.
		installPrivate(t, alias, "plainvol", false)
		mustDocker(t, "plugin", "disable", "-f", alias)
		// Another tag than the installed one: the CLI asks unless told.
		mustDocker(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", alias, next)
		src := mustDocker(t, "plugin", "inspect", "--format", `{{range .Config.Mounts}}{{if eq .Name "store"}}{{.Source}}{{end}}{{end}}`, alias)
		if src != filepath.Join(defaults, "store") {
			t.Errorf("after docker plugin upgrade store.source is %q; the README says Docker puts back the default %s", src, filepath.Join(defaults, "store"))
		}
		_, err := suite.docker("plugin", "enable", alias)
		if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
			t.Errorf("enable with the defaults missing: %v; want dockerd's stat error", err)
		}
		for _, d := range []string{"store", "state"} {
			if err := os.MkdirAll(filepath.Join(defaults, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		defer func() {
			suite.docker("plugin", "disable", "-f", alias)
			os.RemoveAll(defaults)
		}()
		mustDocker(t, "plugin", "enable", alias)
		if out := mustDocker(t, "volume", "ls", "-q", "--filter", "driver="+alias); out != "" {
			t.Errorf("with the defaults present the plugin lists %q; want the other, empty store", out)
		}
	})

	t.Run("RexrayKeepsEveryVolume", func(t *testing.T) {
		const alias = "rexray/upgraded:latest"
		u := installPrivate(t, alias, "upgvol", true)
		// The name as users type it, without the tag.
		stdout, stderr, err := rexrayUpgrade("rexray/upgraded", next)
		t.Logf("rexray plugin upgrade:\n%s%s", stderr, stdout)
		if err != nil {
			t.Fatalf("rexray plugin upgrade: %v", err)
		}
		if want := "Upgraded plugin " + alias + " to " + next; strings.TrimSpace(stdout) != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		if !strings.Contains(stderr, "keeper-upgvol (upgvol)") {
			t.Errorf("the steps do not name the container that keeps running on its mount:\n%s", stderr)
		}
		if d := mustDocker(t, "plugin", "inspect", "--format", "{{.Config.Description}}", alias); !strings.HasSuffix(d, "(v2)") {
			t.Errorf("description %q: the plugin does not run the new version", d)
		}
		u.keeps(t, next, "upgvol")
		if _, err := os.Stat(defaults); !os.IsNotExist(err) {
			t.Errorf("the new version's default sources were made or used: %v", err)
		}

		// Without REMOTE: the reference the plugin runs, fetched again.
		stdout, stderr, err = rexrayUpgrade(alias)
		if err != nil || strings.TrimSpace(stdout) != "Upgraded plugin "+alias+" to "+next {
			t.Errorf("upgrade without REMOTE: %v, stdout %q, stderr:\n%s", err, stdout, stderr)
		}
		u.keeps(t, next, "upgvol")
	})

	// A disabled plugin is upgraded, given its sources back, and left
	// disabled.
	t.Run("DisabledStaysDisabled", func(t *testing.T) {
		const alias = "rexray/resting:latest"
		u := installPrivate(t, alias, "restvol", false)
		mustDocker(t, "plugin", "disable", "-f", alias) // it has a volume
		_, stderr, err := rexrayUpgrade(alias, next)
		if err != nil || !strings.Contains(stderr, "put back") {
			t.Fatalf("upgrade of a disabled plugin: %v, stderr:\n%s", err, stderr)
		}
		if got := mustDocker(t, "plugin", "inspect", "--format", "{{.Enabled}} {{.PluginReference}}", alias); got != "false "+next {
			t.Errorf("plugin: %q, want disabled on %s", got, next)
		}
		mustDocker(t, "plugin", "enable", alias)
		u.keeps(t, next, "restvol")
	})
}

// TestPluginUpgradeFailureRestores: an upgrade that fails leaves the
// previous plugin enabled with its settings, and says which step failed:
// before anything changed (a REMOTE that does not exist), and after the
// rootfs was swapped (a version whose enable fails).
func TestPluginUpgradeFailureRestores(t *testing.T) {
	const alias = "rexray/failing:latest"
	u := installPrivate(t, alias, "failvol", true)
	old := suite.registry + "/rexray/loopback:test"

	t.Run("RemoteDoesNotExist", func(t *testing.T) {
		_, stderr, err := rexrayUpgrade(alias, suite.registry+"/rexray/loopback:nope")
		if err == nil || !strings.Contains(stderr, `step "remote"`) || !strings.Contains(stderr, "not changed") {
			t.Errorf("exit %v, stderr:\n%s\nwant a failure naming step \"remote\"", err, stderr)
		}
		u.keeps(t, old, "failvol")
	})

	t.Run("EnableFailsAfterTheSwap", func(t *testing.T) {
		missing := filepath.Join(suite.dir, "never-made")
		broken := pushVariant(t, "broken", func(cfg map[string]any) {
			cfg["mounts"] = append(cfg["mounts"].([]any), map[string]any{
				"name": "extra", "destination": "/extra", "source": missing,
				"type": "bind", "options": []string{"rbind"},
			})
		})
		_, stderr, err := rexrayUpgrade("--grant-all-permissions", alias, broken)
		t.Logf("rexray plugin upgrade:\n%s", stderr)
		if err == nil || !strings.Contains(stderr, `step "enable"`) || !strings.Contains(stderr, "previous plugin is back") {
			t.Errorf("exit %v; want a failure naming step \"enable\" and the previous plugin back", err)
		}
		u.keeps(t, old, "failvol")
	})

	// A version whose store and state can no longer be set would serve its
	// defaults, another store: refused before it is enabled.
	t.Run("StoreThatCannotBeSetBack", func(t *testing.T) {
		defaults := filepath.Join(suite.dir, "unsettable-defaults")
		unsettable := pushVariant(t, "unsettable", func(cfg map[string]any) {
			v2(defaults)(cfg)
			for _, m := range cfg["mounts"].([]any) {
				delete(m.(map[string]any), "settable")
			}
		})
		_, stderr, err := rexrayUpgrade("--grant-all-permissions", alias, unsettable)
		t.Logf("rexray plugin upgrade:\n%s", stderr)
		if err == nil || !strings.Contains(stderr, `step "settings"`) || !strings.Contains(stderr, "mount store is "+filepath.Join(defaults, "store")) || !strings.Contains(stderr, "previous plugin is back") {
			t.Errorf("exit %v; want a failure at step \"settings\" naming the store, and the previous plugin back", err)
		}
		if strings.Contains(stderr, "enable: done") {
			t.Errorf("the version on another store was enabled")
		}
		u.keeps(t, old, "failvol")
	})

	// A version that mounts its store and state elsewhere than the kept
	// env says serves an empty store: the volume check sees it.
	t.Run("VolumeGoneAfterTheUpgrade", func(t *testing.T) {
		moved := pushVariant(t, "moved", func(cfg map[string]any) {
			for _, m := range cfg["mounts"].([]any) {
				m := m.(map[string]any)
				if name := m["name"]; name == "store" || name == "state" {
					m["destination"] = "/srv/" + name.(string)
				}
			}
		})
		_, stderr, err := rexrayUpgrade(alias, moved)
		t.Logf("rexray plugin upgrade:\n%s", stderr)
		if err == nil || !strings.Contains(stderr, `step "volumes"`) || !strings.Contains(stderr, "not listed after it: failvol") || !strings.Contains(stderr, "previous plugin is back") {
			t.Errorf("exit %v; want a failure at step \"volumes\" naming failvol, and the previous plugin back", err)
		}
		u.keeps(t, old, "failvol")
	})

	t.Run("NewPrivilegeRefused", func(t *testing.T) {
		_, stderr, err := rexrayUpgrade(alias, suite.registry+"/rexray/loopback:broken")
		if err == nil || !strings.Contains(stderr, `step "privileges"`) || !strings.Contains(stderr, "--grant-all-permissions") {
			t.Errorf("exit %v, stderr:\n%s\nwant step \"privileges\" refused without --grant-all-permissions", err, stderr)
		}
		u.keeps(t, old, "failvol")
	})
}
