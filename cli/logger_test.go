package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rexray/rexray/config"
)

// REXRAY_LOGFORMAT: json writes one object a line with the call's fields;
// anything but text or json is refused naming both.
func TestLogFormat(t *testing.T) {
	var out bytes.Buffer
	log, err := newLogger(config.Config{LogLevel: "info", LogFormat: "json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.WithField("req", "7f3a").WithField("volume", "db1").Info("mounted")
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("json log line %q: %v", out.String(), err)
	}
	if line["req"] != "7f3a" || line["volume"] != "db1" || line["msg"] != "mounted" || line["level"] != "info" {
		t.Errorf("json log line = %v", line)
	}
	out.Reset()
	log, err = newLogger(config.Config{LogLevel: "info", LogFormat: "text"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.WithField("req", "7f3a").Info("mounted")
	if !strings.Contains(out.String(), "req=7f3a") {
		t.Errorf("text log line %q lacks req=7f3a", out.String())
	}
	_, err = newLogger(config.Config{LogLevel: "info", LogFormat: "yaml"}, &out)
	if err == nil || !strings.Contains(err.Error(), "REXRAY_LOGFORMAT") || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("REXRAY_LOGFORMAT=yaml: %v, want an error naming the variable and text or json", err)
	}
}
