#!/usr/bin/env bash
# The unit tests: every package's tests that need neither root, nor loop
# devices, nor dockerd (those are behind the integration build tag). As
# root, the test binaries run as nobody, which proves it. Prints how many
# tests ran, and fails on any failure or skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# Under emulation (GOARCH another architecture, run through binfmt_misc)
# a test binary cannot re-exec itself as nobody (qemu-user's
# /proc/self/exe is the binary in go's private build folder), so there
# the tests run as root.
exec_as=()
if [[ $(go env GOARCH) != "$(go env GOHOSTARCH)" ]]; then
	echo "unit: $(go env GOARCH) tests under emulation run as root" >&2
elif [[ $(id -u) == 0 ]]; then
	if setpriv --reuid=65534 --regid=65534 --clear-groups test -r . -a -x .; then
		exec_as=(-exec 'setpriv --reuid=65534 --regid=65534 --clear-groups')
	else
		echo "unit: $(pwd) is not readable by nobody: running the unit tests as root" >&2
	fi
fi
json=$(mktemp)
trap 'rm -f "$json"' EXIT
rc=0
go test -count=1 -json "${exec_as[@]}" ./... >"$json" || rc=$?
python3 - "$json" "$rc" <<'PY'
import json, sys, collections
counts, failed, skipped, pkgs = collections.Counter(), [], [], set()
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("Action") == "output" and not e.get("Test") and e["Output"].startswith(("FAIL", "ok", "---")):
        print(e["Output"], end="")
    if not e.get("Test") or e.get("Action") not in ("pass", "fail", "skip"):
        continue
    counts[e["Action"]] += 1
    pkgs.add(e["Package"])
    if e["Action"] == "fail":
        failed.append(e["Package"] + " " + e["Test"])
    elif e["Action"] == "skip":
        skipped.append(e["Package"] + " " + e["Test"])
print(f"unit: {counts['pass']} tests passed, {counts['fail']} failed, {counts['skip']} skipped, in {len(pkgs)} packages (subtests included)")
for what, tests in (("FAILED", failed), ("SKIPPED", skipped)):
    for t in tests:
        print(f"  {what}: {t}")
sys.exit(1 if failed or skipped or sys.argv[2] != "0" else 0)
PY
