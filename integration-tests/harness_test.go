//go:build integration

// Package integration runs rexray on a real dockerd: the plugin is pushed to
// a real TLS registry, installed from it, and used through Docker's API and
// CLI with real loop devices, mkfs and mounts. It needs root and the tools
// `make setup` installs.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// env is what every test shares: one dockerd, one registry, one store.
type env struct {
	repo     string // repository root
	dir      string // everything the suite makes on disk; a shared mount
	engine   string // the Docker engine: 20.10, 26.1 or 28.5 (DOCKER_ENGINE)
	info     engineInfo
	host     string // DOCKER_HOST of the test dockerd
	registry string // host:port of the TLS registry
	store    string // host folder mounted as the plugin's "store"
	state    string // host folder mounted as the plugin's "state"
	keys     string // host folder mounted as the plugin's "keys"
	cli      *client.Client
}

// plugin is the name tests install the plugin under, as users do.
const plugin = "rexray/loopback:latest"

var suite *env

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests need root (loop devices, mounts, dockerd)")
		return 1
	}
	e, err := setUp()
	if e != nil {
		// tearDown looks for mounts in the suite's engine: even after a
		// failed set-up, suite is what it tears down.
		suite = e
		defer e.tearDown()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "set-up:", err)
		return 1
	}
	suite = e
	code := m.Run()
	if code != 0 {
		e.dumpLog(80)
	}
	return code
}

// dumpLog prints the end of the test dockerd's log, which holds the
// plugin's own log lines: the folder is gone after the suite.
func (e *env) dumpLog(lines int) {
	b, err := os.ReadFile(filepath.Join(e.dir, "d", "dockerd.log"))
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimSpace(string(b)), "\n")
	fmt.Fprintf(os.Stderr, "--- last %d lines of dockerd.log\n%s\n", lines, strings.Join(all[max(0, len(all)-lines):], "\n"))
}

func setUp() (*env, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	version, err := engineVersion()
	if err != nil {
		return nil, err
	}
	// Short: unix socket paths under it must fit in 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "rxit-")
	if err != nil {
		return nil, err
	}
	if err := shareDir(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := os.Getenv("REGISTRY_PORT")
	if port == "" {
		port = "5443" // not 5000: Debian's docker-registry service may hold it
	}
	e := &env{
		repo:     repo,
		dir:      dir,
		engine:   version,
		registry: "localhost:" + port,
		store:    filepath.Join(dir, "store"),
		state:    filepath.Join(dir, "state"),
		keys:     filepath.Join(dir, "keys"),
	}
	for _, d := range []string{e.store, e.state, e.keys, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return e, err
		}
	}
	// Every test's folders lie in the one folder the engine sees as the
	// host does; the scripts the tests run use the same engine.
	os.Setenv("TMPDIR", filepath.Join(dir, "tmp"))
	os.Setenv("DOCKER_ENGINE", version)
	os.Setenv("ENGINE_BINDS", dir)
	if _, err := e.hack("registry-start.sh", filepath.Join(dir, "registry"), port); err != nil {
		return e, err
	}
	if e.info, err = e.engineUp(); err != nil {
		return e, err
	}
	e.host = e.info.host
	fmt.Printf("integration: Docker engine %s (dockerd %s, API %s)\n", e.engine, e.info.version, e.info.api)
	e.cli, err = client.NewClientWithOpts(client.WithHost(e.host), client.WithAPIVersionNegotiation())
	if err != nil {
		return e, err
	}
	if _, err := e.hack("import-busybox.sh", "busybox:latest"); err != nil {
		return e, err
	}
	return e, e.pushPlugin()
}

// pushPlugin publishes build/plugin (made by `make plugin`) to the registry,
// so the tests install it the way users do.
func (e *env) pushPlugin() error {
	ref := e.registry + "/rexray/loopback:test"
	steps := [][]string{
		{"plugin", "create", ref, filepath.Join(e.repo, "build", "plugin")},
		{"plugin", "push", ref},
		{"plugin", "rm", ref},
	}
	for _, s := range steps {
		if _, err := e.docker(s...); err != nil {
			return fmt.Errorf("docker %s: %w", strings.Join(s, " "), err)
		}
	}
	return nil
}

// tearDown removes what the suite made, also after a failure: the dockerd
// (and its containers and plugin), the registry, then any loop device or
// mount still tied to the suite's folder, which would be a leak.
func (e *env) tearDown() {
	if e.host != "" {
		e.docker("swarm", "leave", "--force")
		e.docker("plugin", "disable", "-f", plugin)
	}
	e.hack("engine.sh", "down", filepath.Join(e.dir, "d"))
	e.hack("registry-stop.sh", filepath.Join(e.dir, "registry"), strings.TrimPrefix(e.registry, "localhost:"))
	for _, m := range mountsUnder(e.dir) {
		fmt.Fprintln(os.Stderr, "teardown: unmounting leaked", m)
		unix.Unmount(m, unix.MNT_DETACH)
	}
	for _, dev := range loopsUnder(e.store) {
		fmt.Fprintln(os.Stderr, "teardown: detaching leaked", dev)
		exec.Command("losetup", "-d", dev).Run()
	}
	unix.Unmount(e.dir, unix.MNT_DETACH) // shareDir's
	os.RemoveAll(e.dir)
}

func (e *env) hack(script string, args ...string) (string, error) {
	return e.hackEnv(nil, script, args...)
}

// hackEnv runs a hack/ script with extra environment variables.
func (e *env) hackEnv(env []string, script string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(e.repo, "hack", script), args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+e.host), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("hack/%s: %w", script, err)
	}
	return out.String(), nil
}

// docker runs the docker CLI against the test dockerd, as a user would. It
// returns standard output; a failure carries standard error, where the CLI
// writes what the user reads.
func (e *env) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// mustDocker is docker for steps that must succeed.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := suite.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// volumesDir is the host folder of the test store's volumes.
func (e *env) volumesDir() string {
	return filepath.Join(e.store, "volumes")
}

// image is the host path of a volume's image file.
func (e *env) image(name string) string { return filepath.Join(e.volumesDir(), name+".img") }

// loopsUnder lists the loop devices whose backing file lies under dir.
// losetup matches the file by device and inode, so paths seen inside the
// plugin's mount namespace do not matter.
func loopsUnder(dir string) []string {
	var devs []string
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && strings.HasSuffix(path, ".img") {
			devs = append(devs, loopsOf(path)...)
		}
		return nil
	})
	return devs
}

func loopsOf(file string) []string {
	out, err := exec.Command("losetup", "--noheadings", "--output", "NAME", "-j", file).Output()
	if err != nil {
		return nil
	}
	return strings.Fields(string(out))
}

// mountsUnder lists the mount points under dir, deepest first: this
// namespace's and the engines' (see mountTables), each once.
func mountsUnder(dir string) []string {
	seen := map[string]bool{}
	var mps []string
	for _, table := range mountTables(dir) {
		for _, mp := range mountPoints(table) {
			if strings.HasPrefix(mp, dir+"/") && !seen[mp] {
				seen[mp] = true
				mps = append(mps, mp)
			}
		}
	}
	sort.SliceStable(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}

// volumeMounts lists the host mounts of a volume: under the plugin's
// propagated mount, which dockerd keeps under its data-root.
func volumeMounts(name string) []string {
	var found []string
	for _, m := range mountsUnder(suite.dir) {
		if strings.Contains(m, "/propagated-mount/volumes/"+name) {
			found = append(found, m)
		}
	}
	return found
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// released asserts a volume holds no loop device and no mount on the host.
func released(t *testing.T, name string) {
	t.Helper()
	waitFor(t, name+" to be unmounted and detached", 10*time.Second, func() bool {
		return len(loopsOf(suite.image(name))) == 0 && len(volumeMounts(name)) == 0
	})
}

// attached asserts the volume is on a loop device and mounted.
func attached(t *testing.T, name string) {
	t.Helper()
	if l := loopsOf(suite.image(name)); len(l) != 1 {
		t.Fatalf("volume %s: want one loop device, have %v", name, l)
	}
	if len(volumeMounts(name)) == 0 {
		t.Fatalf("volume %s: not mounted under the plugin's propagated mount", name)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// runCmd runs a host tool and returns its output.
func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
