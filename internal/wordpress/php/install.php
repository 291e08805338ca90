<?php
// scalepress: install WordPress once, without the web form.
// Environment: SP_DOCROOT, SP_URL, SP_TITLE, SP_ADMIN_USER, SP_ADMIN_EMAIL,
// SP_PERMALINKS; the admin password on stdin (its file stays readable by
// root only). Prints "user=NAME" (the user PHP runs as), then "installed" or
// "already-installed".
$pw = function_exists('posix_geteuid') ? posix_getpwuid(posix_geteuid()) : false;
echo 'user=', $pw ? $pw['name'] : (function_exists('posix_geteuid') ? posix_geteuid() : get_current_user()), "\n";
$url = parse_url(getenv('SP_URL'));
$https = ($url['scheme'] ?? 'http') === 'https';
$port = $url['port'] ?? ($https ? 443 : 80);
$_SERVER['HTTP_HOST'] = $url['host'] . (isset($url['port']) ? ':' . $url['port'] : '');
$_SERVER['SERVER_NAME'] = $url['host'];
$_SERVER['SERVER_PORT'] = $port;
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REQUEST_METHOD'] = 'GET';
if ($https) {
    $_SERVER['HTTPS'] = 'on';
}
// No mail on this machine: keep wp_install from calling sendmail.
function wp_mail() { return true; }

define('WP_INSTALLING', true);
require getenv('SP_DOCROOT') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

if (is_blog_installed()) {
    echo "already-installed\n";
    exit(0);
}
$password = trim(stream_get_contents(STDIN));
if ($password === '') {
    fwrite(STDERR, "admin password is empty\n");
    exit(1);
}
$result = wp_install(getenv('SP_TITLE'), getenv('SP_ADMIN_USER'), getenv('SP_ADMIN_EMAIL'), true, '', $password);
if (is_wp_error($result) || empty($result['user_id'])) {
    fwrite(STDERR, "wp_install failed\n");
    exit(1);
}
update_option('permalink_structure', getenv('SP_PERMALINKS'));
delete_option('rewrite_rules');
echo "installed\n";
