# Shared by the bench scripts (source it after `cd` to the repository root).

# results_open NAME PARAMS: from here on everything the script prints also goes
# to bench/results/NAME-YYYY-MM-DD.txt (NAME-YYYY-MM-DD-2.txt, -3, ... if that
# day's file exists; RESULTS=path overrides), after a header with the script,
# its parameters, the commit and the machine's load. raw_add puts a load
# generator's full output into the file only. results_close (in the script's
# EXIT trap, last) lets the file catch up before the script exits.
results_open() {
  local name=$1 params=$2 root base n=1
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [[ -z ${RESULTS:-} ]]; then
    base=$root/bench/results/$name-$(date +%F)
    RESULTS=$base.txt
    while [[ -e $RESULTS ]]; do n=$((n + 1)); RESULTS=$base-$n.txt; done
  fi
  mkdir -p "$(dirname "$RESULTS")"
  {
    echo "# bench/$name.sh $params"
    echo "# started $(date -Is), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- 2>/dev/null || echo ' (uncommitted changes)')"
  } >"$RESULTS"
  # One pipe for both streams keeps the file in the order things happened;
  # lines raw_add marks with \001 go to the file only.
  exec 3>&1 4>&2
  exec > >(awk -v f="$RESULTS" '{ if (substr($0, 1, 1) == "\001") print substr($0, 2) >> f; else { print; fflush(); print >> f }; fflush(f) }') 2>&1
  RESULTS_PID=$!
  echo "raw output: ${RESULTS#"$root"/}"
}

# raw_add LABEL TEXT: TEXT (a load generator's output) into the results file, under "--- LABEL".
raw_add() {
  printf '%s\n' "--- $1" "$2" | sed $'s/^/\001/'
}

# results_close: back to the terminal; waits (at most 5 s) for the file to be written.
results_close() {
  [[ -n ${RESULTS_PID:-} ]] || return 0
  exec >&3 2>&4 3>&- 4>&-
  local _
  for _ in $(seq 1 50); do kill -0 "$RESULTS_PID" 2>/dev/null || break; sleep 0.1; done
  RESULTS_PID=
}

# start_nginx_fpm W LISTEN DOCROOT HOST [cache]
# Starts php-fpm with node-1's pool settings and php.ini, and nginx in front of
# it on LISTEN, serving DOCROOT with HTTP_HOST pinned to HOST (WordPress's
# canonical host). With "cache", nginx adds fastcgi_cache (5 min for 200s;
# searches, ?s=, bypass it as WordPress cache setups do).
# State goes to W/nginx; pids in W/nginx/{nginx,php-fpm}.pid.
start_nginx_fpm() {
  local w=$1 listen=$2 docroot=$3 host=$4 cache=${5:-}
  local n=$w/nginx
  mkdir -p $n/tmp $n/cache; chown -R www-data $n
  sed -e "s#^listen = .*#listen = $n/php-fpm.sock#" -e "s#^pid = .*#pid = $n/php-fpm.pid#" \
      -e "s#^error_log = .*#error_log = $n/php-fpm.log#" -e "s#^\[node-1\]#[nginx]#" \
      -e "s#^listen.owner = .*#listen.owner = www-data#" \
      $w/nodes/node-1/run/php-fpm.conf > $n/php-fpm.conf
  php-fpm8.2 --nodaemonize --fpm-config $n/php-fpm.conf -c $w/nodes/node-1/run/php.ini >$n/php-fpm.out 2>&1 &
  local zone="" php_cache=""
  if [[ $cache == cache ]]; then
    zone="fastcgi_cache_path $n/cache levels=1:2 keys_zone=WP:32m max_size=1g inactive=60m use_temp_path=off;"
    php_cache="fastcgi_cache WP; fastcgi_cache_key \$scheme\$request_method\$host\$request_uri; fastcgi_cache_valid 200 5m;
      fastcgi_ignore_headers Cache-Control Expires Set-Cookie;
      fastcgi_cache_bypass \$arg_s; fastcgi_no_cache \$arg_s;
      add_header X-Cache \$upstream_cache_status;"
  fi
  cat > $n/nginx.conf <<EOC
user www-data;
worker_processes auto;
pid $n/nginx.pid;
error_log $n/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off; sendfile on; tcp_nopush off; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 10000; open_file_cache max=10000 inactive=60s;
  client_body_temp_path $n/tmp; fastcgi_temp_path $n/tmp; proxy_temp_path $n/tmp; uwsgi_temp_path $n/tmp; scgi_temp_path $n/tmp;
  $zone
  server {
    listen $listen;
    root $docroot;
    index index.php;
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_param HTTP_HOST $host;
      fastcgi_param SERVER_PORT ${host##*:};
      fastcgi_pass unix:$n/php-fpm.sock;
      $php_cache
    }
  }
}
EOC
  for _ in $(seq 1 50); do [[ -S $n/php-fpm.sock ]] && break; sleep 0.1; done
  nginx -c $n/nginx.conf
  sleep 0.5
}

# stop_nginx_fpm W: stops what start_nginx_fpm started.
stop_nginx_fpm() {
  local p
  for p in $1/nginx/nginx.pid $1/nginx/php-fpm.pid; do [[ -f $p ]] && kill "$(cat $p)" 2>/dev/null || true; done
}

# sched_group_open NAME: moves this script (and so everything it starts from
# here on: `up --detach`'s whole stack, nginx, php-fpm, wrk) into a cpu
# cgroup of its own, when it may (root, cgroup v1 cpu controller). Why: the
# kernel's autogroups give every session an equal share of the CPU, and `up
# --detach` starts the stack in a session of its own (setsid), so under load
# from other sessions scalepress's PHP shared one share with MariaDB, redis,
# the edge and the node agent, while nginx's PHP, started here, had the
# database's work in another share: not like with like. Inside one cgroup
# autogroups do not apply and nice works as configured, for both targets.
# Prints what it did. sched_group_close (in the EXIT trap, after everything
# is stopped) moves back and removes the cgroup.
sched_group_open() {
  SCHED_GROUP=""
  local root=/sys/fs/cgroup/cpu
  if [[ $(id -u) == 0 && -w $root/cgroup.procs && $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null) == 1 ]]; then
    SCHED_GROUP=$root/scalepress-bench-$1-$$
    if mkdir "$SCHED_GROUP" && echo $$ >"$SCHED_GROUP/cgroup.procs"; then
      echo "scheduling: every process of this run in cpu cgroup $SCHED_GROUP (autogroups off for it)"
      return
    fi
    rmdir "$SCHED_GROUP" 2>/dev/null || true
    SCHED_GROUP=""
  fi
  echo "scheduling: autogroups $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo '?'), no cgroup of our own (not root or no cgroup v1 cpu controller): the stack and nginx are in different sessions"
}

sched_group_close() {
  [[ -n ${SCHED_GROUP:-} ]] || return 0
  echo $$ >/sys/fs/cgroup/cpu/cgroup.procs 2>/dev/null || true
  local _
  for _ in $(seq 1 100); do rmdir "$SCHED_GROUP" 2>/dev/null && break; sleep 0.1; done
  SCHED_GROUP=""
}
