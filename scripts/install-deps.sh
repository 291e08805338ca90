#!/usr/bin/env bash
# Installs, from Debian's packages, everything scalepress needs at run time and
# test time. Idempotent and fast when everything is already present.
#
#   scripts/install-deps.sh          run-time + test-time packages
#   scripts/install-deps.sh --bench  also the peers the benchmarks compare with
#
# scalepress starts php-fpm, MariaDB and redis itself (own config, own loopback
# address). The system services these packages ship are not needed, so package
# installation is told not to start them (policy-rc.d) when nothing else decides.
set -euo pipefail

PKGS=(
  php-fpm php-cli php-mysql php-redis php-curl php-gd php-xml php-mbstring php-zip php-intl
  mariadb-server mariadb-client galera-4 mariadb-backup rsync
  redis-server
  wordpress wordpress-theme-twentytwentythree
  wrk curl jq bind9-dnsutils socat iproute2 procps psmisc ca-certificates make
  gcc libc6-dev   # CGO, for the Nomad build of scripts/install-tools.sh (make tools)
  prometheus      # promtool: deploy/prometheus rule checks and tests (the service is never started)
  chromium        # the dashboard test drives it (test/e2e/console_test.go)
)
if [[ "${1:-}" == "--bench" ]]; then
  PKGS+=(nginx-light haproxy varnish hey dnsperf sysbench lsyncd)
fi

# The unprivileged system user the roles run as when scalepress runs as
# root (docs/adr/0009-trust-model.md). Idempotent.
ensure_user() {
  if id -u scalepress >/dev/null 2>&1; then return 0; fi
  local sudo=
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to create the system user scalepress" >&2; return 1; }
    sudo=sudo
  fi
  $sudo useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin scalepress
  echo "install-deps: created system user scalepress"
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PKGS[@]} packages present"
  ensure_user
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
else
  SUDO=
fi

echo "install-deps: installing ${missing[*]}"
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  # Keep apt from starting system mariadb/redis/php-fpm/nginx on the ports we use.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if ((created_policy)); then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
ensure_user
echo "install-deps: done"
