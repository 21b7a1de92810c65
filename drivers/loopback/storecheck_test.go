package loopback

import (
	"strings"
	"testing"
	"time"
)

// An NFS store mounted with nocto is refused, naming the export and the
// options to use; the defaults of NFSv3 and NFSv4.2, lookupcache of any
// kind included, are accepted. The options are as /proc/self/mountinfo
// shows them.
func TestCheckNFS(t *testing.T) {
	named := nfsIdentity{nodename: "node-1"}
	for _, opts := range []string{
		"rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,local_lock=none,addr=10.0.0.1",
		"rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.1,mountvers=3,mountport=20048,mountproto=udp,local_lock=none,addr=10.0.0.1",
		"rw,vers=4.2,lookupcache=pos",
		"rw,vers=4.2,actimeo=0,lookupcache=none",
	} {
		if err := checkNFS("/mnt/store", "srv:/export", opts, named); err != nil {
			t.Errorf("options %s refused: %v", opts, err)
		}
	}
	err := checkNFS("/mnt/store", "srv:/export", "rw,vers=3,nocto,hard,proto=tcp", named)
	if err == nil {
		t.Fatal("nocto accepted")
	}
	for _, want := range []string{"/mnt/store", "srv:/export", "nocto", "close-to-open", "vers=4.2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
}

// A hard mount (NFS's default), or a soft one whose writes wait longer
// than the self-fence, is warned of with the options to use; a soft mount
// that fails a write first is not.
func TestHardRisk(t *testing.T) {
	const ttl = 15 * time.Second
	for _, c := range []struct {
		opts string
		warn bool
	}{
		{"rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2", true},
		{"rw,vers=3,proto=tcp", true},
		{"rw,vers=4.2,soft,proto=tcp,timeo=600,retrans=2", true},
		{"rw,vers=4.2,soft,proto=tcp,timeo=20,retrans=1", false},
		{"rw,vers=4.2,softerr,timeo=30,retrans=2", false},
		{"rw,vers=4.2,soft,timeo=33,retrans=1", false}, // what the warning proposes
	} {
		risk := hardRisk("/mnt/store", "srv:/export", c.opts, ttl)
		if (risk != "") != c.warn {
			t.Errorf("%s: warning %q, want one: %v", c.opts, risk, c.warn)
		}
		if risk != "" && (!strings.Contains(risk, "srv:/export") || !strings.Contains(risk, "soft,timeo=33,retrans=1")) {
			t.Errorf("%s: the warning %q names neither the export nor options that fence in time", c.opts, risk)
		}
	}
}

// An NFSv4 store on a host whose NFSv4 client has a default identity (a
// default host name, no uniquifier) is refused, naming the export, the
// name and the ways out; a host name of its own, a uniquifier, or NFSv3
// is accepted.
func TestCheckNFSv4Identity(t *testing.T) {
	const v4, v3 = "rw,vers=4.2,hard", "rw,vers=3,hard"
	for _, c := range []struct {
		opts string
		id   nfsIdentity
	}{
		{v4, nfsIdentity{nodename: "node-2"}},
		{v4, nfsIdentity{nodename: "localhost", uniquifier: "3f0c1a9e"}},
		{v3, nfsIdentity{nodename: "(none)"}},
	} {
		if err := checkNFS("/mnt/store", "srv:/", c.opts, c.id); err != nil {
			t.Errorf("%s on %+v refused: %v", c.opts, c.id, err)
		}
	}
	for _, name := range []string{"(none)", "localhost", ""} {
		err := checkNFS("/mnt/store", "srv:/", v4, nfsIdentity{nodename: name})
		if err == nil {
			t.Errorf("host name %q without a uniquifier accepted", name)
			continue
		}
		for _, want := range []string{"/mnt/store", "srv:/", `"` + name + `"`, "hostnamectl", "/sys/fs/nfs/net/nfs_client/identifier", "NFSv3"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal %q does not say %q", err, want)
			}
		}
	}
}
