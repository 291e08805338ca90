# Shared by the bench scripts (source it).

# start_nginx_fpm W LISTEN DOCROOT HOST [cache]
# Starts php-fpm with node-1's pool settings and php.ini, and nginx in front of
# it on LISTEN, serving DOCROOT with HTTP_HOST pinned to HOST (WordPress's
# canonical host). With "cache", nginx adds fastcgi_cache (5 min for 200s).
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
