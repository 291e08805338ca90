#!/usr/bin/env bash
# Builds the programs the multi-host tests need that are not Debian packages,
# at pinned versions, from the Go module proxy, and caches them between runs:
#
#   nomad     v1.6.3  MPL-2.0     the tools/nomad module (committed go.sum), CGO on
#   versitygw v1.8.0  Apache-2.0  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
#   pebble    v2.10.3 MPL-2.0     go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3
#                                 (Let's Encrypt's test ACME server: test/e2e TestTLSACME)
#   h2spec    v2.2.1  MIT         the tools/h2spec module (committed go.sum: h2spec has no
#                                 go.mod, so its dependencies are pinned there)
#                                 (HTTP/2 conformance: internal/edge TestH2Spec)
#
# Cache, ${SCALEPRESS_TOOLS:-$HOME/.cache/scalepress/tools}:
#   nomad-KEY/nomad                    KEY = first 16 hex of sha256(tools/nomad/go.mod,
#                                            tools/nomad/go.sum, `go version`)
#   versitygw-v1.8.0-GOVERSION/versitygw
#   pebble-v2.10.3-GOVERSION/pebble
#   h2spec-KEY/h2spec                  KEY = the same over tools/h2spec/go.mod and go.sum
#   bin/nomad, bin/versitygw, bin/pebble, bin/h2spec
#                                      symlinks to the above; what the tests run
#                                      (test/tools.Path; keep the two in step)
#
# Idempotent; when all are cached it checks them and returns in well under a
# second. The four are installed concurrently (each output shown once it is
# done, in the order above): the builds overlap their module downloads and
# links, so a cold run takes about as long as nomad alone. A build goes to a
# temporary name and is renamed only once it runs and reports the pinned
# version, so a failed or interrupted build leaves nothing behind. Cold, nomad
# takes several minutes (docs/multi-host.md "Tooling").
#
# `make tools` runs this, and `make test` runs `make tools`; `make up` does not
# (one machine needs no Nomad).
set -euo pipefail

NOMAD_VERSION=v1.6.3     # tools/nomad/go.mod requires it; test/tools.NomadVersion
VERSITYGW_VERSION=v1.8.0 # test/tools.VersitygwVersion
PEBBLE_VERSION=v2.10.3  # test/tools.PebbleVersion
H2SPEC_VERSION=v2.2.1   # test/tools.H2specVersion

GO=${GO:-go}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod=$root/tools/nomad
h2mod=$root/tools/h2spec
cache=${SCALEPRESS_TOOLS:-$HOME/.cache/scalepress/tools}

say() { echo "install-tools: $*"; }
die() { echo "install-tools: $*" >&2; exit 1; }

command -v "$GO" >/dev/null || die "needs Go ($GO not found; Go 1.26 from https://go.dev/dl/)"
grep -q "^require github.com/hashicorp/nomad $NOMAD_VERSION\$" "$mod/go.mod" ||
  die "tools/nomad/go.mod does not require github.com/hashicorp/nomad $NOMAD_VERSION: keep it and NOMAD_VERSION in step"
grep -q "^require github.com/summerwind/h2spec $H2SPEC_VERSION+incompatible\$" "$h2mod/go.mod" ||
  die "tools/h2spec/go.mod does not require github.com/summerwind/h2spec $H2SPEC_VERSION+incompatible: keep it and H2SPEC_VERSION in step"

mkdir -p "$cache/bin"
# One install at a time per cache: a second run waits, then finds the tools cached.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  say "waiting for another install-tools run on $cache"
  flock 9
fi

# A build in progress lives in $tmp, never at its final name; an interrupted
# or failed install removes it (each install runs in a subshell of its own,
# with its own $tmp and traps: see install_bg).
tmp=

gover=$("$GO" env GOVERSION)
nomad_key=$({ cat "$mod/go.mod" "$mod/go.sum"; "$GO" version; } | sha256sum | cut -c1-16)
h2spec_key=$({ cat "$h2mod/go.mod" "$h2mod/go.sum"; "$GO" version; } | sha256sum | cut -c1-16)

# check_nomad BIN: BIN runs and says it is the pinned version.
check_nomad() {
  local out
  out=$("$1" version 2>&1) || { echo "$out" >&2; return 1; }
  [[ $(head -n1 <<<"$out") == "Nomad $NOMAD_VERSION" ]] || { echo "$1 version: $out" >&2; return 1; }
}

# check_versitygw BIN: BIN runs and says it is the pinned version.
check_versitygw() {
  local out
  out=$("$1" --version 2>&1) || { echo "$out" >&2; return 1; }
  grep -qx "Version  *: $VERSITYGW_VERSION" <<<"$out" || { echo "$1 --version: $out" >&2; return 1; }
}

# check_pebble BIN, check_h2spec BIN: BIN runs and says it is the pinned
# version (stamped at build: go install leaves their version strings "dev").
check_pebble() {
  local out
  out=$("$1" -version 2>&1) || true
  [[ $out == "Pebble version: $PEBBLE_VERSION" ]] || { echo "$1 -version: $out" >&2; return 1; }
}
check_h2spec() {
  local out
  out=$("$1" --version 2>&1) || true
  [[ $out == "Version: ${H2SPEC_VERSION#v} (module)" ]] || { echo "$1 --version: $out" >&2; return 1; }
}

# link NAME TARGET: points bin/NAME at TARGET (relative to bin/), replacing the
# link atomically (rename over it) so a test never sees it missing.
link() {
  local name=$1 target=$2
  if [[ $(readlink "$cache/bin/$name" 2>/dev/null) == "$target" ]]; then return 0; fi
  ln -s "$target" "$cache/bin/.$name.$$"
  mv -T "$cache/bin/.$name.$$" "$cache/bin/$name"
}

# install NAME DIR: DIR/NAME from the cache if it checks out, else built by
# build_NAME into a temporary directory beside it and renamed into place.
install() {
  local name=$1 dir=$2 start version_var=${1^^}_VERSION
  if [[ -x $cache/$dir/$name ]] && "check_$name" "$cache/$dir/$name"; then
    link "$name" "../$dir/$name"
    say "$name ${!version_var} cached ($cache/bin/$name -> $dir/$name)"
    return 0
  fi
  mkdir -p "$cache/$dir"
  tmp=$(mktemp -d "$cache/$dir/.build.XXXXXX")
  start=$SECONDS
  "build_$name" "$tmp" || die "building $name failed (output above); nothing was installed"
  "check_$name" "$tmp/$name" || die "the $name just built does not report the pinned version; nothing was installed"
  mv -f "$tmp/$name" "$cache/$dir/$name"
  rm -rf "$tmp"
  tmp=
  link "$name" "../$dir/$name"
  say "$name ${!version_var} built in $((SECONDS - start)) s ($cache/bin/$name -> $dir/$name)"
}

# The tools are built without debug information (no DWARF from the compiler,
# none kept by the linker): nothing debugs them with a debugger, a panic still
# names its functions (the symbol table Go's runtime uses is kept), and on a
# cold cache it saves about a fifth of nomad's build CPU
# (docs/multi-host.md "Tooling").
lean_gc=-gcflags=all=-dwarf=false
lean_ld="-s -w"

# Nomad's own go.mod has replace directives, so `go install ...@v1.6.3` cannot
# build it; tools/nomad carries them (docs/multi-host.md "Tooling").
build_nomad() {
  command -v gcc >/dev/null || { echo "install-tools: nomad builds with CGO: install gcc (scripts/install-deps.sh does)" >&2; return 1; }
  (cd "$mod" && CGO_ENABLED=1 nice -n 10 "$GO" build -mod=readonly -trimpath \
    "$lean_gc" -ldflags "$lean_ld" -o "$1/nomad" github.com/hashicorp/nomad)
}

# versitygw's --version prints what its Makefile stamps with -X; stamp the
# pinned tag so the check above (and test/tools) can read it.
build_versitygw() {
  (cd "$1" && GOBIN=$1 nice -n 10 "$GO" install -trimpath "$lean_gc" \
    -ldflags "$lean_ld -X=main.Version=$VERSITYGW_VERSION -X=main.Build=module -X=main.BuildTime=none" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
}

build_pebble() {
  (cd "$1" && GOBIN=$1 nice -n 10 "$GO" install -trimpath "$lean_gc" -ldflags "$lean_ld -X=main.version=$PEBBLE_VERSION" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION")
}

# h2spec has no go.mod of its own: tools/h2spec pins its dependencies, and
# -mod=readonly fails the build rather than change them.
build_h2spec() {
  (cd "$h2mod" && nice -n 10 "$GO" build -mod=readonly -trimpath "$lean_gc" -o "$1/h2spec" \
    -ldflags "$lean_ld -X=main.VERSION=${H2SPEC_VERSION#v} -X=main.COMMIT=module" \
    github.com/summerwind/h2spec/cmd/h2spec)
}

# install_bg NAME DIR: install NAME DIR in a background subshell, its output
# into $logs/NAME. The subshell removes its own build in progress when it
# exits (a failed build, or a signal forwarded by the trap below).
logs=$(mktemp -d "${TMPDIR:-/tmp}/install-tools.XXXXXX")
pids=()
names=()
install_bg() {
  (
    trap 'if [[ -n $tmp ]]; then rm -rf "$tmp"; fi' EXIT
    trap 'exit 130' INT TERM HUP
    install "$@"
  ) >"$logs/$1" 2>&1 &
  pids+=($!)
  names+=("$1")
}
trap 'rm -rf "$logs"' EXIT
trap 'if ((${#pids[@]})); then kill "${pids[@]}" 2>/dev/null; wait; fi; exit 130' INT TERM HUP

install_bg nomad "nomad-$nomad_key"
install_bg versitygw "versitygw-$VERSITYGW_VERSION-$gover"
install_bg pebble "pebble-$PEBBLE_VERSION-$gover"
install_bg h2spec "h2spec-$h2spec_key"

failed=()
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then failed+=("${names[$i]}"); fi
  cat "$logs/${names[$i]}"
done
((${#failed[@]} == 0)) || die "not installed: ${failed[*]} (output above)"
