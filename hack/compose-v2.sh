#!/usr/bin/env bash
# Print the path of a Compose v2 binary, fetching it once: Debian 12 ships
# only Compose v1 (docker-compose 1.29), and forky's docker-compose package
# is Compose v2, a static Go program that runs here as it is. Nothing is
# installed into the host: the package is unpacked into the cache folder.
#
#   hack/compose-v2.sh [CACHE]    (default /var/cache/rexray/compose-v2)
set -euo pipefail

cache=${1:-/var/cache/rexray/compose-v2}
bin=$cache/root/usr/libexec/docker/cli-plugins/docker-compose
if [[ -x $bin ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

rm -rf "$cache"
mkdir -p "$cache"/{lists/partial,archives/partial,deb}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian forky main" >"$cache/sources.list"
# A private sources list and state: the host's apt knows nothing of forky.
# The suite's Release files may be past their Valid-Until on the mirror.
apt_opts=(-qq -o "Dir::Etc::SourceList=$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache" -o Dir::State::Status=/dev/null
  -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >&2
(cd "$cache/deb" && apt-get "${apt_opts[@]}" download docker-compose >&2)
dpkg-deb -x "$cache"/deb/docker-compose_*.deb "$cache/root"
rm -rf "$cache/lists" "$cache/archives" "$cache"/*.bin
"$bin" version >&2
echo "$bin"
