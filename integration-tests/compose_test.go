//go:build integration

package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeCompose is the Compose file of the README's Compose section, so
// that what users copy is what runs here.
func readmeCompose(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(suite.repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Compose\n")
	if ok {
		_, sec, ok = strings.Cut(sec, "```yaml\n")
	}
	if ok {
		sec, _, ok = strings.Cut(sec, "```")
	}
	if !ok {
		t.Fatal("README.md has no Compose section with a yaml block")
	}
	return sec
}

// composeTool is one Compose release, run as its users run it.
type composeTool struct {
	name string
	argv []string
}

func composeTools(t *testing.T) []composeTool {
	t.Helper()
	v1, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("Compose v1: %v (make setup installs docker-compose)", err)
	}
	out, err := suite.hack("compose-v2.sh")
	if err != nil {
		t.Fatalf("Compose v2: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return []composeTool{{"v1", []string{v1}}, {"v2", []string{lines[len(lines)-1]}}}
}

// run runs one compose command on the project in dir against the suite's
// dockerd.
func (c composeTool) run(t *testing.T, dir, project string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(c.argv[1:], "--project-name", project, "--file", filepath.Join(dir, "compose.yaml")), args...)
	cmd := exec.CommandContext(ctx, c.argv[0], argv...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+suite.host)
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		t.Fatalf("compose %s %s: %v\n%s", c.name, strings.Join(args, " "), err, outb.String())
	}
	return outb.String()
}

// testCompose: the README's Compose file, with Compose v1 and v2: a second
// `up` (where v1 compares the file's driver with dockerd's name for it),
// `down` and `up` again keep the data, `down -v` removes the volume and
// leaves no loop device or mount.
func testCompose(t *testing.T) {
	file := readmeCompose(t)
	if !strings.Contains(file, "driver: "+plugin) {
		t.Fatalf("the README's Compose file does not name the driver %s:\n%s", plugin, file)
	}
	for _, c := range composeTools(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			project := "rx" + c.name
			vol := project + "_appdata"
			t.Cleanup(func() {
				suite.docker("rm", "-f", project+"_app_1", project+"-app-1")
				suite.docker("volume", "rm", vol)
			})
			c.run(t, dir, project, "up", "-d")
			c.run(t, dir, project, "up", "-d")
			if d := mustDocker(t, "volume", "inspect", "--format", "{{.Driver}}", vol); d != plugin {
				t.Errorf("volume %s has driver %q, want %s", vol, d, plugin)
			}
			c.run(t, dir, project, "down")
			c.run(t, dir, project, "up", "-d")
			c.run(t, dir, project, "down")
			out := mustDocker(t, "run", "--rm", "-v", vol+":/data", "busybox", "cat", "/data/log")
			if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2 {
				t.Errorf("%s's log has %d lines, want one for each of the 2 containers compose ran:\n%s", vol, n, out)
			}
			c.run(t, dir, project, "down", "-v")
			if _, err := suite.docker("volume", "inspect", vol); err == nil {
				t.Errorf("volume %s still exists after down -v", vol)
			}
			released(t, vol)
		})
	}
}
