#!/bin/sh
# Builds the test tools of the TLS work (issue 13) from the Go module proxy
# at pinned versions into $SCALEPRESS_TOOLS/bin (default
# ~/.cache/scalepress/tools/bin), where test/tools finds them. To be merged
# into scripts/install-tools.sh (`make tools`) once that exists.
#   pebble  Let's Encrypt's test ACME server (e2e: TestTLSACME)
#   h2spec  HTTP/2 conformance (e2e: TestH2Spec)
set -eu
dir="${SCALEPRESS_TOOLS:-$HOME/.cache/scalepress/tools}/bin"
mkdir -p "$dir"
export GOBIN="$dir" GOFLAGS=-mod=mod
go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3
go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
"$dir/pebble" -version >/dev/null 2>&1 || true
echo "installed pebble, h2spec in $dir"
