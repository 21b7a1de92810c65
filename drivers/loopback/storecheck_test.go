package loopback

import (
	"strings"
	"testing"
	"time"
)

// An NFS store mounted with nocto, or over NFSv4 with its cache of names
// not found, is refused, naming the export and the options to use; NFSv3's
// defaults, and NFSv4.2 with lookupcache=positive, are accepted. The
// options are as /proc/self/mountinfo shows them.
func TestCheckNFS(t *testing.T) {
	for _, opts := range []string{
		"rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,lookupcache=pos,local_lock=none,addr=10.0.0.1",
		"rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.1,mountvers=3,mountport=20048,mountproto=udp,local_lock=none,addr=10.0.0.1",
		"rw,vers=4.2,actimeo=0,lookupcache=none",
	} {
		if err := checkNFS("/mnt/store", "srv:/export", opts); err != nil {
			t.Errorf("options %s refused: %v", opts, err)
		}
	}
	err := checkNFS("/mnt/store", "srv:/export", "rw,vers=3,nocto,hard,proto=tcp")
	if err == nil {
		t.Fatal("nocto accepted")
	}
	for _, want := range []string{"/mnt/store", "srv:/export", "nocto", "close-to-open", "vers=4.2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
}

func TestCheckNFSRefusesV4NegativeCache(t *testing.T) {
	for _, opts := range []string{
		"rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,local_lock=none,addr=10.0.0.1",
		"rw,vers=4.1,lookupcache=all",
	} {
		err := checkNFS("/mnt/store", "srv:/", opts)
		if err == nil {
			t.Errorf("options %s accepted", opts)
			continue
		}
		for _, want := range []string{"/mnt/store", "srv:/", "NFSv4", "lookupcache=positive", "preempt"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal %q does not say %q", err, want)
			}
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
