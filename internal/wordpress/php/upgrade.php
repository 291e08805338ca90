<?php
// scalepress: run WordPress's database upgrade (wp_upgrade) once, after a
// core release went live (docs/adr/0023-releases.md).
// Environment: SP_DOCROOT, SP_URL. Prints "db=OLD NEW": the database
// version before and after ($wp_db_version of the code).
$url = parse_url(getenv('SP_URL'));
$https = ($url['scheme'] ?? 'http') === 'https';
$_SERVER['HTTP_HOST'] = $url['host'] . (isset($url['port']) ? ':' . $url['port'] : '');
$_SERVER['SERVER_NAME'] = $url['host'];
$_SERVER['SERVER_PORT'] = $url['port'] ?? ($https ? 443 : 80);
$_SERVER['REQUEST_URI'] = '/wp-admin/upgrade.php';
$_SERVER['REQUEST_METHOD'] = 'GET';
if ($https) {
    $_SERVER['HTTPS'] = 'on';
}
function wp_mail() { return true; }

define('WP_INSTALLING', true);
require getenv('SP_DOCROOT') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
global $wp_db_version;
$before = (int) get_option('db_version');
if ($before !== (int) $wp_db_version) {
    wp_upgrade();
}
wp_cache_flush();
echo 'db=', $before, ' ', (int) get_option('db_version'), "\n";
