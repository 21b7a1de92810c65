#!/usr/bin/env bash
# Run every Go fuzz target for FUZZTIME each (default 10s: CI's short form;
# make reliability runs 10m each). A failure leaves its input under the
# package's testdata/fuzz/, where it becomes a seed once committed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

targets=(
	./drivers:FuzzValidateName
	./plugin:FuzzParseCreate
	./plugin:FuzzParseSize
	./plugin:FuzzHTTPHandlers
	./drivers/loopback:FuzzMetadataDecode
)
for t in "${targets[@]}"; do
	pkg=${t%%:*} name=${t##*:}
	echo "fuzz $name in $pkg for $fuzztime"
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$pkg"
done
