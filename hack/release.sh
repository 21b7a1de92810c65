#!/usr/bin/env bash
# Build and push every DRIVER's plugin for every ARCH as
# REGISTRY/rexray/DRIVER:VERSION-ARCH, through DOCKER_HOST's dockerd.
#   hack/release.sh REGISTRY VERSION "DRIVERS" "ARCHS"
# Prints each reference pushed.
set -euo pipefail
[[ $# -eq 4 ]] || { echo "usage: $0 REGISTRY VERSION \"DRIVERS\" \"ARCHS\"" >&2; exit 2; }
registry=$1 version=$2 drivers=$3 archs=$4
repo=$(cd "$(dirname "$0")/.." && pwd)
for driver in $drivers; do
	for arch in $archs; do
		dir=$repo/build/release/$driver-$arch
		ref=$registry/rexray/$driver:$version-$arch
		# DOCKER_HOST= : make plugin would create it under its local name.
		DOCKER_HOST= make -C "$repo" --no-print-directory plugin DRIVER="$driver" ARCH="$arch" PLUGIN_DIR="$dir" VERSION="$version" >&2
		docker plugin rm -f "$ref" >/dev/null 2>&1 || true
		docker plugin create "$ref" "$dir" >&2
		docker plugin push "$ref" >&2
		docker plugin rm "$ref" >/dev/null
		echo "$ref"
	done
done
