//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// engines are the Docker engines the suite runs on (DOCKER_ENGINE):
// Debian 12's dockerd on the host, or a newer one from a Debian tree of its
// own, in its own mount namespace (hack/engine.sh).
var engines = []string{"20.10", "26.1", "28.5"}

// defaultEngine is the engine of a run that names none.
const defaultEngine = "28.5"

// engineVersion is the engine this run uses.
func engineVersion() (string, error) {
	v := os.Getenv("DOCKER_ENGINE")
	if v == "" {
		return defaultEngine, nil
	}
	for _, e := range engines {
		if v == e {
			return v, nil
		}
	}
	return "", fmt.Errorf("DOCKER_ENGINE=%q: accepted are %s", v, strings.Join(engines, ", "))
}

// engineInfo is what hack/engine.sh up prints: DOCKER_HOST, ENGINE_VERSION
// and ENGINE_API, one KEY=value a line.
type engineInfo struct {
	host, version, api string
}

func parseEngineInfo(out string) (engineInfo, error) {
	kv := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	info := engineInfo{kv["DOCKER_HOST"], kv["ENGINE_VERSION"], kv["ENGINE_API"]}
	if info.host == "" || info.version == "" || info.api == "" {
		return info, fmt.Errorf("hack/engine.sh up printed %q, want DOCKER_HOST, ENGINE_VERSION and ENGINE_API", out)
	}
	return info, nil
}

// engineUp starts (or starts again, over its folders) the suite's engine;
// env holds extra variables for hack/engine.sh (DOCKERD_EXTRA_ARGS).
func (e *env) engineUp(env ...string) (engineInfo, error) {
	out, err := e.hackEnv(env, "engine.sh", "up", e.engine, filepath.Join(e.dir, "d"))
	if err != nil {
		return engineInfo{}, err
	}
	return parseEngineInfo(out)
}

// engineCrash cuts the power of the suite's Docker host: every process of
// it killed, its mounts gone, its folders kept.
func (e *env) engineCrash() error {
	_, err := e.hack("engine.sh", "crash", filepath.Join(e.dir, "d"))
	return err
}

// shareDir makes dir a shared mount, so that what is mounted under it on
// the host later (host-mode plugins' volumes) is seen by an engine that
// runs in a mount namespace of its own.
func shareDir(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("share %s: %w", dir, err)
	}
	return nil
}

// enginePID is a process of the engine whose folder is dir when that
// engine runs in a mount namespace of its own, else 0.
func enginePID(dir string) int {
	ns, err := os.ReadFile(filepath.Join(dir, "engine.mntns"))
	if err != nil {
		return 0
	}
	for _, f := range []string{"dockerd.pid", "containerd.pid"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && l == strings.TrimSpace(string(ns)) {
			return pid
		}
	}
	return 0
}

// inEngine is the path by which this process reaches p as the suite's
// engine sees it: a volume's mount lives in the engine's namespace.
func inEngine(p string) string {
	if pid := enginePID(filepath.Join(suite.dir, "d")); pid > 0 {
		return fmt.Sprintf("/proc/%d/root%s", pid, p)
	}
	return p
}

// engineCommand runs a command in the suite engine's mount namespace (as
// itself on an engine that shares the host's).
func engineCommand(name string, args ...string) *exec.Cmd {
	if pid := enginePID(filepath.Join(suite.dir, "d")); pid > 0 {
		return exec.Command("nsenter", append([]string{"--mount", "--target", strconv.Itoa(pid), "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// mountTables are the mount tables where the suite's mounts are: this
// process's, the suite engine's, and those of a cluster's hosts under dir.
func mountTables(dir string) []string {
	tables := []string{"/proc/self/mountinfo"}
	dirs, _ := filepath.Glob(filepath.Join(dir, "h[0-9]", "d"))
	for _, d := range append(dirs, filepath.Join(suite.dir, "d")) {
		if pid := enginePID(d); pid > 0 {
			tables = append(tables, fmt.Sprintf("/proc/%d/mountinfo", pid))
		}
	}
	return tables
}

// mountPoints lists the mount points in one mount table.
func mountPoints(table string) []string {
	f, err := os.Open(table)
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 {
			mps = append(mps, fields[4])
		}
	}
	return mps
}
