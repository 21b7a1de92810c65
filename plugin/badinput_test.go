//go:build integration

package plugin

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rexray/rexray/engine/options"
)

// badCase is one request through the socket and what its answer must say.
type badCase struct {
	what  string
	path  string
	body  string
	want  []string                 // substrings of Err; none: the call must succeed
	check func(*testing.T, []byte) // more to check in a successful answer
}

// body is the JSON of a request.
func body(fields map[string]any) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// badNames are names no endpoint may accept: each could escape a folder,
// read as a flag, break a tool, or exceed a file name.
var badNames = map[string]string{
	"empty":              "",
	"dot":                ".",
	"dotdot":             "..",
	"parent":             "../x",
	"deep parent":        "../../../../tmp/x",
	"root":               "/",
	"slash inside":       "a/b",
	"absolute":           "/abs",
	"absolute tmp":       "/tmp/x",
	"dotdot inside":      "a/../b",
	"dot slash":          "./a",
	"trailing slash":     "a/",
	"backslash":          `a\b`,
	"nul inside":         "a\x00b",
	"nul":                "\x00",
	"newline":            "\n",
	"newline inside":     "a\nb",
	"trailing newline":   "a\n",
	"tab":                "\t",
	"space":              " ",
	"leading space":      " a",
	"trailing space":     "a ",
	"space inside":       "a b",
	"accent":             "naïve",
	"cjk":                "卷",
	"emoji":              "😀",
	"emoji suffix":       "vol😀",
	"replacement char":   "\ufffd",
	"201 bytes":          strings.Repeat("x", 201),
	"1000 bytes":         strings.Repeat("x", 1000),
	"202 bytes of é":     strings.Repeat("é", 101),
	"flag":               "-rf",
	"dash":               "-",
	"long flag":          "--help",
	"hidden":             ".hidden",
	"dot dot prefix":     "..x",
	"shell separator":    "a;rm -rf /",
	"shell substitution": "$(reboot)",
	"backticks":          "`id`",
	"colon":              "a:b",
	"glob":               "a*",
	"tilde":              "~root",
	"percent escape":     "%2e%2e",
}

// TestBadInputThroughTheAPI sends what dockerd never would, and a few
// things it would, through the socket: every bad request is refused with a
// JSON error that says what was wrong, and afterwards nothing is mounted or
// attached, the store holds exactly the volumes made on purpose, no file
// appeared anywhere a name could point, and the plugin still answers.
func TestBadInputThroughTheAPI(t *testing.T) {
	r := newRig(t)
	r.cfg.Ops.CreateImplicit = false
	r.cfg.Ops.CreateDefaultSize = "16MiB"
	api := serveAPI(r, testWriter{t})

	const (
		create, remove, mount, unmount = "/VolumeDriver.Create", "/VolumeDriver.Remove", "/VolumeDriver.Mount", "/VolumeDriver.Unmount"
		path, get, list, capabilities  = "/VolumeDriver.Path", "/VolumeDriver.Get", "/VolumeDriver.List", "/VolumeDriver.Capabilities"
		activate                       = "/Plugin.Activate"
	)
	invalidName := []string{"invalid volume name"}
	notFound := []string{"volume not found"}
	var cases []badCase
	add := func(what, path, body string, want ...string) {
		cases = append(cases, badCase{what: what, path: path, body: body, want: want})
	}
	succeed := func(what, path, body string, check func(*testing.T, []byte)) {
		cases = append(cases, badCase{what: what, path: path, body: body, check: check})
	}

	// Names, through every endpoint that takes one.
	for _, what := range slices.Sorted(maps.Keys(badNames)) {
		n := badNames[what]
		add("create name "+what, create, body(map[string]any{"Name": n, "Opts": map[string]string{"size": "16MiB"}}), invalidName...)
		add("mount name "+what, mount, body(map[string]any{"Name": n, "ID": "id1"}), invalidName...)
		add("unmount name "+what, unmount, body(map[string]any{"Name": n, "ID": "id1"}), invalidName...)
		add("remove name "+what, remove, body(map[string]any{"Name": n}), invalidName...)
		add("get name "+what, get, body(map[string]any{"Name": n}), invalidName...)
		add("path name "+what, path, body(map[string]any{"Name": n}), invalidName...)
	}
	// JSON that decodes to a bad name.
	add("name invalid UTF-8", create, "{\"Name\":\"a\xffb\"}", invalidName...)
	add("name null", mount, `{"Name":null,"ID":"a"}`, invalidName...)
	add("name missing", get, `{"ID":"a"}`, invalidName...)
	add("name lower-case key", remove, `{"name":"../x"}`, invalidName...)
	add("name given twice, bad last", create, `{"Name":"ok","Name":"../x"}`, invalidName...)
	add("name escaped slash", path, `{"Name":"..\/x"}`, invalidName...)
	add("name 1 MB", create, `{"Name":"`+strings.Repeat("a", 1<<20)+`"}`, "invalid request body", "too large")

	// Options. Each Create uses a name of its own, so that one wrongly
	// accepted leaves a volume the final check finds.
	n := 0
	opt := func(what string, opts map[string]string, want ...string) {
		n++
		add("option "+what, create, body(map[string]any{"Name": fmt.Sprintf("opt%d", n), "Opts": opts}), want...)
	}
	rawOpt := func(what, opts string, want ...string) {
		n++
		add("option "+what, create, fmt.Sprintf(`{"Name":"opt%d","Opts":%s}`, n, opts), want...)
	}
	accepted := "accepted options are " + strings.Join(options.Accepted(), ", ")
	for _, k := range []string{"color", "sizes", "fs", "mkfs", "--force", "-F", "Name", "", "new fstype", "size\x00", "mount-opts", "o"} {
		opt(fmt.Sprintf("unknown key %q", k), map[string]string{k: "x"}, "unknown option", accepted)
	}
	for i, opts := range []string{
		`{"size":"1","SIZE":"2"}`,
		`{"Size":"16MiB","sIzE":"32MiB"}`,
		`{"size":"1"," size ":"2"}`,
		`{"fsType":"ext4","newfstype":"xfs"}`,
		`{"fstype":"ext4","FSTYPE":"xfs"}`,
		`{"iops":"1","IOPS":"2"}`,
		`{"overwritefs":"true","OverwriteFS":"false"}`,
		`{"volumeType":"a","VOLUMETYPE":"b"}`,
		`{"availabilityZone":"z1","AvailabilityZone":"z2"}`,
	} {
		rawOpt(fmt.Sprintf("key given twice %d %s", i, opts), opts, "given twice with different values")
	}
	for _, s := range []string{"0", "-0", "-1", "0.0", "-1e30", "0MiB", "0b"} {
		opt("size "+s, map[string]string{"size": s}, "invalid size", "must be more than 0")
	}
	for _, s := range []string{"1e30", "9223372036854775807", "8589934592", "+Inf", "Inf", "1e30G", "9.3e18b", "9000PiB"} {
		opt("size "+s, map[string]string{"size": s}, "invalid size", "too large")
	}
	for _, s := range []string{"abc", "1..2", "0x10", "", " ", "NaN", "-Inf", "1EiB", "16EiB", "-16MiB", "1,5", "12XB", "1 G B", "½", "١٢", "-O ^has_journal", "$(reboot)", "16MiB; rm -rf /"} {
		opt(fmt.Sprintf("size %q", s), map[string]string{"size": s}, "invalid size")
	}
	opt("size 1e-30", map[string]string{"size": "1e-30"}, "invalid size", "less than one byte")
	opt("size 1MiB", map[string]string{"size": "1MiB"}, "too small for ext4")
	for _, o := range []string{"x", "nobarrier", "noatime,data=writeback", "ro;reboot", "$(reboot)"} {
		opt(fmt.Sprintf("mountopts %q", o), map[string]string{"mountopts": o}, "is not accepted for ext4: accepted are discard,")
	}
	for _, o := range []string{"-F", "-E nodiscard", "-m 1 -F", "-L ../../x", "; reboot", "-m $(reboot)", "-O ^has_journal"} {
		opt(fmt.Sprintf("mkfsopts %q", o), map[string]string{"mkfsopts": o}, "invalid mkfsopts: mkfs option")
	}
	for _, o := range []string{"mode 4777", "mode 1777", "mode 2750", "uid -1", "gid 4294967295", "uid 1e3"} {
		k, v, _ := strings.Cut(o, " ")
		opt(o, map[string]string{k: v}, "invalid "+k)
	}
	opt("size 1 byte", map[string]string{"size": "1b"}, "too small for ext4")
	opt("size 100MiB xfs", map[string]string{"size": "100MiB", "fsType": "xfs"}, "too small for xfs")
	for _, fs := range []string{"foo", "ext2", "btrfs", "EXT4 ", " ext4", "", "-O ^has_journal", "ext4 -E root_owner=0", "xfs;rm -rf /", "$(reboot)", "`reboot`", "../../bin/sh", "ext4\x00", "ext4\n-F"} {
		opt(fmt.Sprintf("newfstype %q", fs), map[string]string{"newfstype": fs, "size": "16MiB"}, "unknown filesystem type")
		opt(fmt.Sprintf("fsType %q", fs), map[string]string{"fsType": fs, "size": "16MiB"}, "unknown filesystem type")
	}
	for _, s := range []string{"-1", "1e3", "1.5", "abc", "", " 1", "9223372036854775808", "0x10", "$(reboot)"} {
		opt(fmt.Sprintf("iops %q", s), map[string]string{"iops": s}, "invalid iops")
	}
	for _, s := range []string{"maybe", "yes", "2", "", "on", "-f"} {
		opt(fmt.Sprintf("overwritefs %q", s), map[string]string{"overwritefs": s}, "invalid overwritefs")
	}
	// A copy's source is a volume name like any other.
	for _, what := range []string{"parent", "absolute tmp", "slash inside", "empty", "nul inside", "flag", "201 bytes"} {
		opt("volumeName "+what, map[string]string{"volumeName": badNames[what]}, "source volume", "invalid volume name")
		opt("volumeID "+what, map[string]string{"volumeID": badNames[what]}, "source volume", "invalid volume name")
	}
	// A snapshot's name is checked as a snapshot's, and said to be one.
	for _, what := range []string{"parent", "absolute tmp", "slash inside", "empty", "flag", "201 bytes"} {
		opt("snapshotName "+what, map[string]string{"snapshotName": badNames[what]}, "source snapshot", "invalid snapshot name")
	}
	// The user's value is quoted as given, not folded to lower case.
	opt("newfstype in capitals", map[string]string{"newfstype": "EXT9"}, `unknown filesystem type "EXT9"`)
	// Methods the protocol does not have: JSON, as every other answer.
	for _, m := range []string{"/VolumeDriver.Nope", "/Nope", "/", "/VolumeDriver.create"} {
		add("unknown method "+m, m, "{}", "unknown method", "VolumeDriver.{Create")
	}
	opt("volumeName missing", map[string]string{"volumeName": "missing"}, "source volume missing", "volume not found")
	rawOpt("volumeName and volumeID differ", `{"volumeName":"a","volumeID":"b"}`, "given twice with different values")
	n++
	add("option volumeName itself", create, fmt.Sprintf(`{"Name":"opt%d","Opts":{"volumeName":"opt%d"}}`, n, n), "cannot be a copy of itself")
	rawOpt("size as a number", `{"size":16}`, "invalid request body")
	rawOpt("options as a list", `["size","1"]`, "invalid request body")
	rawOpt("options as a string", `"size=1"`, "invalid request body")
	rawOpt("size null", `{"size":null}`, "invalid size")

	// dockerd's retry of a Create cut off part way comes without a body:
	// the answer says so, and that the retry is safe.
	add("create retried without its body", create, "", "invalid request body", "the body is empty", "dockerd retrying a Create whose first attempt was cut off", "killed", "running the same create again is safe")

	// Bodies that do not decode, through every endpoint that reads one.
	for _, ep := range []string{create, remove, mount, unmount, path, get} {
		add(ep+" empty body", ep, "", "invalid request body", "the body is empty")
		add(ep+" blank body", ep, " \n", "invalid request body", "the body is empty")
		for what, b := range map[string]string{
			"truncated object": `{`,
			"truncated value":  `{"Name":`,
			"truncated string": `{"Name":"v`,
			"name a number":    `{"Name": 5}`,
			"name a list":      `{"Name":["a"]}`,
			"name an object":   `{"Name":{"x":1}}`,
			"name a bool":      `{"Name":true}`,
			"empty list":       `[]`,
			"list":             `["a"]`,
			"string":           `"v"`,
			"number":           `42`,
			"not JSON":         `Name=v`,
			"1 MB of x":        strings.Repeat("x", 1<<20),
			"1 MB list":        "[" + strings.Repeat("1,", 1<<19) + "1]",
		} {
			add(ep+" "+what, ep, b, "invalid request body")
		}
	}
	// Endpoints that read no body answer whatever it holds.
	for _, b := range []string{"", "{", "[1,2", strings.Repeat("x", 1<<20)} {
		succeed("list with body "+fmt.Sprint(len(b)), list, b, nil)
		succeed("activate with body "+fmt.Sprint(len(b)), activate, b, func(t *testing.T, a []byte) {
			if string(a) != `{"Implements":["VolumeDriver"]}`+"\n" {
				t.Errorf("Activate = %s", a)
			}
		})
		succeed("capabilities with body "+fmt.Sprint(len(b)), capabilities, b, func(t *testing.T, a []byte) {
			if string(a) != `{"Capabilities":{"Scope":"global"}}`+"\n" {
				t.Errorf("Capabilities = %s", a)
			}
		})
	}

	// Missing volumes and mount IDs, by Docker's semantics: Unmount of an
	// ID the plugin does not know succeeds, everything else is not found.
	for _, id := range []string{"a", "unknown"} {
		add(fmt.Sprintf("mount missing, implicit create off, ID %q", id), mount, body(map[string]any{"Name": "missing", "ID": id}), notFound...)
		succeed(fmt.Sprintf("unmount missing, ID %q", id), unmount, body(map[string]any{"Name": "missing", "ID": id}), nil)
	}
	add("remove missing", remove, `{"Name":"missing"}`, notFound...)
	add("get missing", get, `{"Name":"missing"}`, notFound...)
	add("path missing", path, `{"Name":"missing"}`, notFound...)
	add("get missing, asked again", get, `{"Name":"missing"}`, notFound...)

	// The volumes made on purpose, and what may be asked of them.
	mountpoint := func(want string) func(*testing.T, []byte) {
		return func(t *testing.T, a []byte) {
			var res struct{ Mountpoint string }
			json.Unmarshal(a, &res)
			if res.Mountpoint != want {
				t.Errorf("Mountpoint %q, want %q", res.Mountpoint, want)
			}
		}
	}
	held := r.mnt.Path("held")
	succeed("create held", create, `{"Name":"held","Opts":{"size":"16MiB"}}`, nil)
	succeed("create spare", create, `{"Name":"spare","Opts":{"Size":"16MiB","newfstype":"EXT4"}}`, nil)
	// Strings that only are recorded may hold anything.
	succeed("create recorded", create, body(map[string]any{"Name": "recorded", "Opts": map[string]string{
		"size": "16MiB", "volumeType": "$(reboot)", "availabilityZone": "xfs;rm -rf /", "iops": "0",
	}}), func(t *testing.T, _ []byte) {
		st, a, err := api.post(get, []byte(`{"Name":"recorded"}`))
		var res struct {
			Volume struct{ Status map[string]any }
		}
		if err != nil || st != 200 || json.Unmarshal(a, &res) != nil || res.Volume.Status["type"] != "$(reboot)" || res.Volume.Status["availabilityZone"] != "xfs;rm -rf /" {
			t.Errorf("Get recorded = %d %s, %v", st, a, err)
		}
	})
	succeed("create held again, same size", create, `{"Name":"held","Opts":{"SIZE":"16MiB"}}`, nil)
	add("create held again, other size", create, `{"Name":"held","Opts":{"size":"32MiB"}}`, "it exists and differs", "size is 16MiB, not 32MiB")
	add("create held again, other fs", create, `{"Name":"held","Opts":{"fsType":"xfs","size":"16MiB"}}`, "too small for xfs")
	succeed("unmount held, never mounted", unmount, `{"Name":"held","ID":"a"}`, nil)
	succeed("path held, not mounted", path, `{"Name":"held"}`, mountpoint(""))
	succeed("mount held", mount, `{"Name":"held","ID":"a"}`, mountpoint(held))
	for _, id := range []string{"b", "A", "unknown", strings.Repeat("z", 1000)} {
		succeed(fmt.Sprintf("unmount held, unknown ID %.10q", id), unmount, body(map[string]any{"Name": "held", "ID": id}), nil)
		succeed(fmt.Sprintf("path held after unknown ID %.10q", id), path, `{"Name":"held"}`, mountpoint(held))
	}
	// dockerd always sends an ID of 64 hex digits; an outsized one, or one
	// in the reserved holders' space, is refused before anything is
	// mounted.
	add("mount held, 40000-byte ID", mount, body(map[string]any{"Name": "held", "ID": strings.Repeat("i", 40000)}), "invalid mount ID", "40000 bytes long")
	add("mount held, reserved ID", mount, `{"Name":"held","ID":"rexray:legacy"}`, "invalid mount ID", "reserved")
	add("unmount held, reserved ID", unmount, `{"Name":"held","ID":"rexray:legacy"}`, "invalid mount ID", "reserved")
	succeed("path held after IDs not recorded", path, `{"Name":"held"}`, mountpoint(held))
	add("mount spare, reserved ID", mount, `{"Name":"spare","ID":"rexray:x"}`, "invalid mount ID", "reserved")
	succeed("path spare after its failed mount", path, `{"Name":"spare"}`, mountpoint(""))
	add("remove held while mounted", remove, `{"Name":"held"}`, "in use by 1 container mount(s)")
	succeed("unmount spare, never mounted", unmount, `{"Name":"spare","ID":"a"}`, nil)
	succeed("unmount held", unmount, `{"Name":"held","ID":"a"}`, nil)
	succeed("path held after its unmount", path, `{"Name":"held"}`, mountpoint(""))
	succeed("unmount held again", unmount, `{"Name":"held","ID":"a"}`, nil)

	// Where a name could point, watched from before the first request.
	var watch []string
	for _, c := range cases {
		if req, ok := apiRequest(c.path, []byte(c.body)); ok {
			for _, s := range requestStrings(req) {
				watch = append(watch, absent(r.escapes(s))...)
			}
		}
	}

	t.Logf("%d bad-input cases", len(cases))
	if len(cases) < 200 {
		t.Errorf("only %d cases, want at least 200", len(cases))
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%03d %s", i, c.what), func(t *testing.T) {
			status, answer, err := api.post(c.path, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			var res map[string]any
			if err := json.Unmarshal(answer, &res); err != nil {
				t.Fatalf("answer %d %.200q is not a JSON object: %v", status, answer, err)
			}
			msg, _ := res["Err"].(string)
			if len(c.want) == 0 {
				if status != 200 || msg != "" {
					t.Fatalf("answer %d %.300s, want success", status, answer)
				}
				if c.check != nil {
					c.check(t, answer)
				}
				return
			}
			if status == 200 || msg == "" {
				t.Fatalf("answer %d %.300s, want an error saying %q", status, answer, c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Err %.300q does not say %q", msg, w)
				}
			}
		})
	}

	// Afterwards: the plugin answers and knows exactly the volumes made
	// on purpose, nothing is mounted or attached, and no file appeared
	// where a name could point.
	onPurpose := []string{"held", "recorded", "spare"}
	status, answer, err := api.post(list, nil)
	var listed struct{ Volumes []struct{ Name string } }
	if err != nil || status != 200 || json.Unmarshal(answer, &listed) != nil {
		t.Fatalf("List after the cases = %d %s, %v", status, answer, err)
	}
	var names []string
	for _, v := range listed.Volumes {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, onPurpose) {
		t.Errorf("List = %q, want %q", names, onPurpose)
	}
	store := filepath.Join(r.dir, "store", "volumes")
	var want, got []string
	for _, n := range onPurpose {
		want = append(want, n+".img", n+".json")
		img := filepath.Join(store, n+".img")
		out, err := exec.Command("losetup", "-j", img).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("losetup -j %s: %s %v", img, out, err)
		}
	}
	for _, dir := range []string{store, filepath.Join(r.dir, "store"), r.cfg.Ops.MountPath, r.dir} {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range entries {
			got = append(got, e.Name())
		}
		switch dir {
		case store:
			if !slices.Equal(got, want) {
				t.Errorf("store holds %q, want %q", got, want)
			}
		case filepath.Join(r.dir, "store"):
			if !slices.Equal(got, []string{"snapshots", "volumes"}) {
				t.Errorf("%s holds %q, want only snapshots and volumes", dir, got)
			}
		case r.cfg.Ops.MountPath:
			if len(got) > 0 {
				t.Errorf("mount root holds %q", got)
			}
		case r.dir:
			for _, e := range got {
				if !slices.Contains([]string{"mnt", "rexray.sock", "state", "store"}, e) {
					t.Errorf("rig folder holds %s", e)
				}
			}
		}
	}
	if mounted, err := r.mnt.Mounted(); err != nil || len(mounted) > 0 {
		t.Errorf("mounted after the cases: %v, %v", mounted, err)
	}
	if made := diff(watch, absent(watch)); len(made) > 0 {
		t.Errorf("files appeared where names point: %q", made)
	}
}
