<?php
// Boots the real WordPress (Debian's package) with SHORTINIT, a fake database
// (db.php) and the object-cache drop-in in a test WP_CONTENT_DIR, with
// WP_DEBUG on; then exercises core code that uses the object cache.
//
//   php wp-shortinit.php first|second
//
// Environment: SP_WP (WordPress tree), SP_CONTENT (the content dir with
// object-cache.php and db.php), SP_REDIS_PORT, SP_PREFIX, SP_STATE_DIR.

define( 'ABSPATH', rtrim( getenv( 'SP_WP' ), '/' ) . '/' );
define( 'WP_CONTENT_DIR', getenv( 'SP_CONTENT' ) );
define( 'SHORTINIT', true );
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_DISPLAY', true );
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '127.0.0.1' );
define( 'WP_REDIS_HOST', '127.0.0.1' );
define( 'WP_REDIS_PORT', (int) getenv( 'SP_REDIS_PORT' ) );
define( 'WP_CACHE_KEY_SALT', getenv( 'SP_PREFIX' ) );
define( 'WP_REDIS_STATE_DIR', getenv( 'SP_STATE_DIR' ) );
define( 'SCALEPRESS_OBJECT_CACHE_KEY', 'test-signing-key-0123456789abcdef0123456789abcdef' );
$table_prefix = 'wp_';
$_SERVER['HTTP_HOST']   = 'example.test';
$_SERVER['REQUEST_URI'] = '/';

require ABSPATH . 'wp-settings.php';
require_once ABSPATH . WPINC . '/option.php';

function check( $cond, $what ) {
	if ( ! $cond ) {
		echo "FAIL: $what\n";
		exit( 1 );
	}
}

global $wp_object_cache;
check( wp_using_ext_object_cache(), 'WordPress uses the external object cache' );
check( $wp_object_cache instanceof WP_Object_Cache, 'the global is our cache' );
check( method_exists( $wp_object_cache, 'get_stats' ), 'the drop-in, not core cache.php, was loaded' );
check( isset( $wp_object_cache->global_groups['users'] ), 'core registered its global groups' );
check( isset( $wp_object_cache->non_persistent_groups['counts'] ), 'core registered its non-persistent groups' );

switch ( $argv[1] ) {
	case 'first':
		$last = wp_cache_get_last_changed( 'posts' );
		echo "last_changed=$last\n";
		check( set_transient( 'sp_test', array( 'v' => 1 ), 1 ), 'set_transient' );
		check( array( 'v' => 1 ) === get_transient( 'sp_test' ), 'get_transient in the same request' );
		check( set_transient( 'sp_keep', 'kept' ), 'set_transient without expiration' );
		wp_cache_set( 'c', 1, 'counts' );
		echo 'transient_key=', $wp_object_cache->redis_key( 'sp_test', 'transient' ), "\n";
		break;
	case 'second':
		echo 'last_changed=', wp_cache_get_last_changed( 'posts' ), "\n";
		check( 'kept' === get_transient( 'sp_keep' ), 'transient from the previous request' );
		check( false === wp_cache_get( 'c', 'counts' ), 'non-persistent group not kept' );
		check( 0 === count( $GLOBALS['wpdb']->queries_run ), 'no database query: transients live in redis: ' . implode( '; ', $GLOBALS['wpdb']->queries_run ) );
		break;
}
$s = $wp_object_cache->get_stats();
check( 'connected' === $s['status'], 'connected to redis' );
echo "ok\n";
