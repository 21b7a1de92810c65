#!/usr/bin/env bash
# Start a TLS docker-registry on 127.0.0.1:PORT with a fresh self-signed
# certificate that dockerd trusts via /etc/docker/certs.d/localhost:PORT.
#
#   hack/registry-start.sh DIR [PORT]    (PORT: arg, else $REGISTRY_PORT, else 5000)
#
# On a Debian host with systemd, installing docker-registry also starts its
# own plain-HTTP service on :5000; pick another PORT there (e.g. 5443).
# Stop it with hack/registry-stop.sh DIR.
set -euo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 DIR [PORT]" >&2; exit 2; }
dir=$(realpath -m "$1")
port=${2:-${REGISTRY_PORT:-5000}}
certs=/etc/docker/certs.d/localhost:$port

if [[ -s $dir/registry.pid ]] && kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
  echo "registry already running for $dir (pid $(cat "$dir/registry.pid"))" >&2
  exit 1
fi
if [[ -n $(ss -Hltn "sport = :$port") ]]; then
  echo "port $port is already in use:" >&2
  ss -Hltnp "sport = :$port" >&2
  exit 1
fi

mkdir -p "$dir/data"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$dir/registry.key" -out "$dir/registry.crt" 2>/dev/null
mkdir -p "$certs"
cp "$dir/registry.crt" "$certs/ca.crt"
echo "$port" >"$dir/port" # lets registry-stop.sh find $certs without PORT

cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $dir/registry.crt
    key: $dir/registry.key
EOF

# stdin/stdout redirected so a caller reading our output does not hang.
/usr/bin/docker-registry serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/registry.pid"

for _ in $(seq 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/registry.crt" \
    "https://localhost:$port/v2/" || true)
  [[ $code == 200 ]] && { echo "localhost:$port"; exit 0; }
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
echo "registry did not answer 200 on https://localhost:$port/v2/ (last: ${code:-none})" >&2
tail -n 20 "$dir/registry.log" >&2 || true
kill "$pid" 2>/dev/null || true
exit 1
