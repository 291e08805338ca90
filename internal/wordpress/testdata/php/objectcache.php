<?php
// Test harness for php/object-cache.php without WordPress.
//
//   php objectcache.php --list       the case names
//   php objectcache.php <case>       runs one case; exit 0 and "ok" on success
//
// Environment: SP_DROPIN (the drop-in), SP_REDIS_PORT, SP_REDIS_PASSWORD
// (none if unset), SP_PREFIX (key salt), SP_STATE_DIR, SP_RETRY (retry
// interval, default 0), SP_MULTISITE (1: a multisite), SP_CANARY (a file
// that SP_Canary's magic methods write: must never appear), SP_KEY /
// SP_VALUE (for cases driven step by step from Go).
// Every case runs in its own php process: a new process is a new request.
// Cases named step_* are run by Go tests that change redis between steps;
// --list leaves them out.

error_reporting( E_ALL );
ini_set( 'display_errors', '1' );
set_error_handler(
	function ( $no, $str, $file, $line ) {
		if ( ! ( error_reporting() & $no ) ) {
			return false; // silenced with @
		}
		fwrite( STDOUT, "PHP error $no: $str at $file:$line\n" );
		exit( 3 );
	}
);

define( 'ABSPATH', __DIR__ . '/' );
const TEST_SIGNING_KEY = 'test-signing-key-0123456789abcdef0123456789abcdef';
define( 'WP_REDIS_HOST', '127.0.0.1' );
define( 'WP_REDIS_PORT', (int) getenv( 'SP_REDIS_PORT' ) );
define( 'WP_CACHE_KEY_SALT', (string) getenv( 'SP_PREFIX' ) );
define( 'WP_REDIS_STATE_DIR', (string) getenv( 'SP_STATE_DIR' ) );
define( 'WP_REDIS_RETRY_INTERVAL', (int) getenv( 'SP_RETRY' ) );
define( 'SCALEPRESS_OBJECT_CACHE_KEY', TEST_SIGNING_KEY );
if ( false !== getenv( 'SP_REDIS_PASSWORD' ) ) {
	define( 'WP_REDIS_PASSWORD', getenv( 'SP_REDIS_PASSWORD' ) );
}

if ( getenv( 'SP_MULTISITE' ) ) {
	function is_multisite() {
		return true;
	}
	function get_current_blog_id() {
		return 1;
	}
}

$GLOBALS['doing_it_wrong'] = array();
function _doing_it_wrong( $function, $message, $version ) {
	$GLOBALS['doing_it_wrong'][] = $function . ': ' . $message;
}
$GLOBALS['deprecated'] = array();
function _deprecated_function( $function, $version, $replacement = '' ) {
	$GLOBALS['deprecated'][] = $function;
}
$GLOBALS['suspend'] = false;
function wp_suspend_cache_addition() {
	return $GLOBALS['suspend'];
}

require getenv( 'SP_DROPIN' );

class Failure extends Exception {}

function eq( $want, $got, $what ) {
	if ( $want !== $got ) {
		throw new Failure( $what . ': want ' . var_export( $want, true ) . ', got ' . var_export( $got, true ) );
	}
}

function ok( $cond, $what ) {
	if ( ! $cond ) {
		throw new Failure( $what );
	}
}

/** A plain connection for looking at redis behind the cache's back. */
function raw() {
	static $r = null;
	if ( null === $r ) {
		$r = new Redis();
		$r->connect( '127.0.0.1', (int) getenv( 'SP_REDIS_PORT' ), 1.0 );
		if ( false !== getenv( 'SP_REDIS_PASSWORD' ) ) {
			$r->auth( getenv( 'SP_REDIS_PASSWORD' ) );
		}
	}
	return $r;
}

/** The redis key of a cache key. */
function rkey( $key, $group ) {
	return $GLOBALS['wp_object_cache']->redis_key( $key, $group );
}

/** What redis holds for a cache key after the 32-byte MAC: the payload. */
function payload_of( $key, $group ) {
	$raw = raw()->get( rkey( $key, $group ) );
	return false === $raw ? false : substr( $raw, 32 );
}

/**
 * A class whose magic methods write SP_CANARY, as a plugin's class could
 * write a file or run a query: if a forged value in redis were
 * unserialised, the file would appear.
 */
class SP_Canary {
	public $armed = false;
	public function __wakeup() {
		file_put_contents( getenv( 'SP_CANARY' ), "__wakeup\n", FILE_APPEND );
	}
	public function __destruct() {
		if ( $this->armed ) {
			file_put_contents( getenv( 'SP_CANARY' ), "__destruct\n", FILE_APPEND );
		}
	}
}

/** serialize() and igbinary_serialize() of an armed SP_Canary, in an array too. */
function canary_payloads() {
	$c        = new SP_Canary();
	$c->armed = true;
	$out      = array(
		'serialize'          => serialize( $c ),
		'serialize in array' => serialize( array( 'blogname' => 'forged', 'x' => $c ) ),
	);
	if ( function_exists( 'igbinary_serialize' ) ) {
		$out['igbinary']          = igbinary_serialize( $c );
		$out['igbinary in array'] = igbinary_serialize( array( 'x' => $c ) );
	}
	$c->armed = false;
	return $out;
}

function canary_quiet( $what ) {
	clearstatcache();
	ok( ! file_exists( getenv( 'SP_CANARY' ) ), $what . ': a magic method of the forged object ran' );
}

/** A new cache object: what the next request would get. */
function next_request( array $options = array() ) {
	$GLOBALS['wp_object_cache'] = new WP_Object_Cache( $options );
	return $GLOBALS['wp_object_cache'];
}

function stat_of( $name ) {
	return $GLOBALS['wp_object_cache']->get_stats()[ $name ];
}

/*
 * Cases.
 */

function case_add_get_found() {
	wp_cache_init();
	$found = null;
	eq( false, wp_cache_get( 'k', 'g', false, $found ), 'get of a missing key' );
	eq( false, $found, 'found for a missing key' );
	eq( true, wp_cache_add( 'k', 'v1', 'g' ), 'first add' );
	eq( false, wp_cache_add( 'k', 'v2', 'g' ), 'second add' );
	eq( 'v1', wp_cache_get( 'k', 'g', false, $found ), 'get after add' );
	eq( true, $found, 'found after add' );
	eq( true, wp_cache_set( 'f', false, 'g' ), 'set false' );
	eq( true, wp_cache_set( 'n', null, 'g' ), 'set null' );

	next_request();
	eq( false, wp_cache_add( 'k', 'v3', 'g' ), 'add over a key another request added' );
	eq( 'v1', wp_cache_get( 'k', 'g', false, $found ), 'get in the next request' );
	eq( true, $found, 'found in the next request' );
	eq( false, wp_cache_get( 'f', 'g', false, $found ), 'stored false' );
	eq( true, $found, 'stored false is found' );
	eq( null, wp_cache_get( 'n', 'g', false, $found ), 'stored null' );
	eq( true, $found, 'stored null is found' );
	eq( false, wp_cache_get( 'k', '', false, $found ), 'empty group is "default", not "g"' );

	// Groups: '' means 'default'.
	wp_cache_set( 'd', 1 );
	eq( 1, wp_cache_get( 'd', 'default' ), 'empty group is default' );

	// Suspended addition.
	$GLOBALS['suspend'] = true;
	eq( false, wp_cache_add( 'new', 1, 'g' ), 'add while suspended' );
	eq( array( 'x' => false ), wp_cache_add_multiple( array( 'x' => 1 ), 'g' ), 'add_multiple while suspended' );
}

function case_replace() {
	wp_cache_init();
	eq( false, wp_cache_replace( 'k', 'v', 'g' ), 'replace of a missing key' );
	eq( false, wp_cache_get( 'k', 'g' ), 'replace did not create it' );
	eq( 0, raw()->exists( $GLOBALS['wp_object_cache']->redis_key( 'k', 'g' ) ), 'replace did not create it in redis' );
	wp_cache_set( 'k', 'v1', 'g' );
	eq( true, wp_cache_replace( 'k', 'v2', 'g' ), 'replace of a present key' );
	next_request();
	eq( 'v2', wp_cache_get( 'k', 'g' ), 'replaced value in the next request' );
	// Deleted by another request while this one holds it in its runtime cache:
	// redis decides.
	raw()->del( $GLOBALS['wp_object_cache']->redis_key( 'k', 'g' ) );
	eq( false, wp_cache_replace( 'k', 'v3', 'g' ), 'replace of a key deleted elsewhere' );
	eq( false, wp_cache_get( 'k', 'g' ), 'nothing after the failed replace' );
}

function case_types_survive() {
	wp_cache_init();
	$values = array(
		'int'        => 42,
		'negative'   => -7,
		'zero'       => 0,
		'numeric'    => '42',
		'padded'     => '007',
		'empty'      => '',
		'float'      => 1.5,
		'true'       => true,
		'array'      => array( 'a' => 1, 'b' => array( 2, 3 ) ),
		'emptyarray' => array(),
		'object'     => (object) array( 'x' => 1 ),
		'binary'     => "\x00\x00\x00\x02 not igbinary",
	);
	foreach ( $values as $k => $v ) {
		wp_cache_set( $k, $v, 'types' );
	}
	next_request();
	foreach ( $values as $k => $v ) {
		$found = null;
		$got   = wp_cache_get( $k, 'types', false, $found );
		ok( $found, "$k found" );
		if ( is_object( $v ) ) {
			eq( $v == $got, true, "$k equal" );
			eq( get_class( $v ), get_class( $got ), "$k class" );
		} else {
			eq( $v, $got, $k );
		}
	}
	eq( '42', payload_of( 'int', 'types' ), 'an int is stored as a decimal string' );
	$arr = payload_of( 'array', 'types' );
	eq( function_exists( 'igbinary_serialize' ), 0 === strncmp( $arr, "\x00\x00\x00\x02", 4 ), 'arrays use igbinary when it is loaded' );
	eq( 's:2:"42";', payload_of( 'numeric', 'types' ), 'a numeric string stays a string' );

	// A node without igbinary writes serialize() and reads both.
	next_request( array( 'igbinary' => false ) );
	eq( $values['array'], wp_cache_get( 'array', 'types' ), 'igbinary value read with igbinary off' );
	wp_cache_set( 'array2', $values['array'], 'types' );
	eq( 'a:', substr( payload_of( 'array2', 'types' ), 0, 2 ), 'serialize() with igbinary off' );
	next_request();
	eq( $values['array'], wp_cache_get( 'array2', 'types' ), 'serialize() value read with igbinary on' );

	// Garbage in redis is a miss, not an error.
	raw()->set( $GLOBALS['wp_object_cache']->redis_key( 'junk', 'types' ), 'a:1:{broken' );
	$found = null;
	eq( false, wp_cache_get( 'junk', 'types', false, $found ), 'garbage' );
	eq( false, $found, 'garbage is not found' );
}

function case_force() {
	wp_cache_init();
	wp_cache_set( 'k', 'mine', 'g' );
	$other = new WP_Object_Cache(); // another request, at the same time
	$other->set( 'k', 'theirs', 'g' );
	eq( 'mine', wp_cache_get( 'k', 'g' ), 'runtime cache answers without force' );
	$calls = stat_of( 'redis_calls' );
	$found = null;
	eq( 'theirs', wp_cache_get( 'k', 'g', true, $found ), 'force asks redis' );
	eq( true, $found, 'found with force' );
	eq( $calls + 1, stat_of( 'redis_calls' ), 'force made one redis call' );
	eq( 'theirs', wp_cache_get( 'k', 'g' ), 'force refreshed the runtime cache' );
	$other->delete( 'k', 'g' );
	eq( false, wp_cache_get( 'k', 'g', true, $found ), 'force sees a delete elsewhere' );
	eq( false, $found, 'not found with force after a delete elsewhere' );
}

function case_multiple() {
	wp_cache_init();
	$calls = stat_of( 'redis_calls' );
	eq( array( 'a' => true, 'b' => true, 'c' => true ), wp_cache_set_multiple( array( 'a' => 1, 'b' => 'two', 'c' => array( 3 ) ), 'm' ), 'set_multiple' );
	eq( 2, stat_of( 'redis_calls' ) - $calls, 'set_multiple: connect + one pipeline' );

	next_request();
	$calls = stat_of( 'redis_calls' );
	eq( array( 'c' => array( 3 ), 'zz' => false, 'a' => 1, 'b' => 'two' ), wp_cache_get_multiple( array( 'c', 'zz', 'a', 'b' ), 'm' ), 'get_multiple keeps order and reports misses' );
	eq( 2, stat_of( 'redis_calls' ) - $calls, 'get_multiple: connect + one MGET' );
	$calls = stat_of( 'redis_calls' );
	eq( array( 'a' => 1, 'b' => 'two' ), wp_cache_get_multiple( array( 'a', 'b' ), 'm' ), 'get_multiple from the runtime cache' );
	eq( 0, stat_of( 'redis_calls' ) - $calls, 'no redis call for runtime hits' );

	eq( array( 'a' => false, 'd' => true, 'e' => true ), wp_cache_add_multiple( array( 'a' => 9, 'd' => 4, 'e' => 5 ), 'm' ), 'add_multiple' );
	next_request();
	wp_cache_set( 'f', 6, 'm' );
	eq( array( 'a' => false, 'f' => false, 'g' => true ), wp_cache_add_multiple( array( 'a' => 9, 'f' => 9, 'g' => 7 ), 'm' ), 'add_multiple against redis and the runtime cache' );
	eq( array( 'a' => 1, 'd' => 4, 'e' => 5, 'f' => 6, 'g' => 7 ), wp_cache_get_multiple( array( 'a', 'd', 'e', 'f', 'g' ), 'm' ), 'values after add_multiple' );

	next_request();
	$calls = stat_of( 'redis_calls' );
	eq( array( 'a' => true, 'nope' => false, 'd' => true ), wp_cache_delete_multiple( array( 'a', 'nope', 'd' ), 'm' ), 'delete_multiple' );
	eq( 2, stat_of( 'redis_calls' ) - $calls, 'delete_multiple: connect + one pipeline' );
	next_request();
	eq( array( 'a' => false, 'd' => false, 'e' => 5 ), wp_cache_get_multiple( array( 'a', 'd', 'e' ), 'm' ), 'after delete_multiple' );
	eq( array( 'e' => 5 ), wp_cache_get_multiple( array( 'e' ), 'm', true ), 'get_multiple with force' );
}

function case_delete() {
	wp_cache_init();
	eq( false, wp_cache_delete( 'k', 'g' ), 'delete of a missing key' );
	wp_cache_set( 'k', 1, 'g' );
	next_request();
	eq( true, wp_cache_delete( 'k', 'g' ), 'delete of a key only in redis' );
	eq( false, wp_cache_get( 'k', 'g' ), 'gone' );
	next_request();
	eq( false, wp_cache_get( 'k', 'g' ), 'gone in the next request' );
}

function case_incr_decr() {
	wp_cache_init();
	eq( false, wp_cache_incr( 'missing', 1, 'n' ), 'incr of a missing key' );
	eq( false, wp_cache_get( 'missing', 'n' ), 'incr did not create the key' );
	wp_cache_set( 'c', 5, 'n' );
	eq( 8, wp_cache_incr( 'c', 3, 'n' ), 'incr' );
	eq( 9, wp_cache_incr( 'c', 1, 'n' ), 'incr by default offset' );
	eq( 4, wp_cache_decr( 'c', 5, 'n' ), 'decr' );
	eq( 0, wp_cache_decr( 'c', 100, 'n' ), 'decr never below 0' );
	eq( '0', payload_of( 'c', 'n' ), 'clamped in redis too' );
	eq( 2, wp_cache_incr( 'c', 2, 'n' ), 'incr after clamping' );
	eq( 0, wp_cache_incr( 'c', -10, 'n' ), 'incr by a negative offset is clamped' );

	// Another request's incr is seen: it ran in redis.
	wp_cache_set( 'shared', 10, 'n' );
	$other = new WP_Object_Cache();
	eq( 11, $other->incr( 'shared', 1, 'n' ), 'incr in another request' );
	eq( 12, wp_cache_incr( 'shared', 1, 'n' ), 'incr sees the other request' );

	// Non-integers, as core: numeric strings count, anything else is 0.
	wp_cache_set( 's', '7', 'n' );
	eq( 8, wp_cache_incr( 's', 1, 'n' ), 'incr of a numeric string' );
	wp_cache_set( 'x', 'abc', 'n' );
	eq( 1, wp_cache_incr( 'x', 1, 'n' ), 'incr of a non-numeric string' );
	wp_cache_set( 'fl', 2.7, 'n' );
	eq( 3, wp_cache_incr( 'fl', 1, 'n' ), 'incr of a float truncates it' );
	wp_cache_set( 'arr', array( 1 ), 'n' );
	eq( 1, wp_cache_incr( 'arr', 1, 'n' ), 'incr of an array' );

	next_request();
	eq( 8, wp_cache_get( 's', 'n' ), 'incremented value read back as an int' );

	// incr keeps the TTL.
	wp_cache_set( 't', 1, 'n', 100 );
	wp_cache_incr( 't', 1, 'n' );
	$ttl = raw()->ttl( $GLOBALS['wp_object_cache']->redis_key( 't', 'n' ) );
	ok( $ttl > 90 && $ttl <= 100, "TTL kept by incr, got $ttl" );

	// Non-persistent groups count in the runtime cache, as core.
	wp_cache_add_non_persistent_groups( 'np' );
	wp_cache_set( 'c', 1, 'np' );
	eq( 3, wp_cache_incr( 'c', 2, 'np' ), 'incr in a non-persistent group' );
	eq( 0, wp_cache_decr( 'c', 5, 'np' ), 'decr in a non-persistent group' );
}

function case_flush_group() {
	wp_cache_init();
	wp_cache_set( 'k', 'a', 'ga' );
	wp_cache_set( 'k', 'b', 'gb' );
	eq( true, wp_cache_flush_group( 'ga' ), 'flush_group' );
	eq( false, wp_cache_get( 'k', 'ga' ), 'flushed group in this request' );
	eq( 'b', wp_cache_get( 'k', 'gb' ), 'other group in this request' );
	next_request();
	eq( false, wp_cache_get( 'k', 'ga' ), 'flushed group in the next request' );
	eq( 'b', wp_cache_get( 'k', 'gb' ), 'other group in the next request' );
	wp_cache_set( 'k', 'a2', 'ga' );
	next_request();
	eq( 'a2', wp_cache_get( 'k', 'ga' ), 'the flushed group works again' );
	eq( true, wp_cache_supports( 'flush_group' ), 'supports flush_group' );
}

function case_flush_only_this_site() {
	$mine   = next_request();
	$theirs = new WP_Object_Cache( array( 'prefix' => getenv( 'SP_PREFIX' ) . '-other' ) );
	$mine->set( 'k', 'mine', 'g' );
	$theirs->set( 'k', 'theirs', 'g' );
	raw()->set( 'unrelated', 'x' );
	eq( true, wp_cache_flush(), 'flush' );
	eq( false, wp_cache_get( 'k', 'g' ), 'flushed in this request' );
	next_request();
	eq( false, wp_cache_get( 'k', 'g' ), 'flushed in the next request' );
	$theirs = new WP_Object_Cache( array( 'prefix' => getenv( 'SP_PREFIX' ) . '-other' ) );
	eq( 'theirs', $theirs->get( 'k', 'g' ), 'the other site keeps its keys' );
	eq( 'x', raw()->get( 'unrelated' ), 'keys of nobody survive' );
	wp_cache_set( 'k', 'again', 'g' );
	next_request();
	eq( 'again', wp_cache_get( 'k', 'g' ), 'works after a flush' );
}

function case_flush_runtime() {
	wp_cache_init();
	wp_cache_set( 'k', 'v', 'g' );
	wp_cache_add_non_persistent_groups( 'np' );
	wp_cache_set( 'k', 'v', 'np' );
	eq( true, wp_cache_flush_runtime(), 'flush_runtime' );
	eq( array(), $GLOBALS['wp_object_cache']->cache, 'runtime cache empty' );
	$hits = stat_of( 'redis_hits' );
	eq( 'v', wp_cache_get( 'k', 'g' ), 'redis still has it' );
	eq( $hits + 1, stat_of( 'redis_hits' ), 'read from redis' );
	eq( false, wp_cache_get( 'k', 'np' ), 'non-persistent value gone' );
}

function case_non_persistent() {
	wp_cache_init();
	wp_cache_add_non_persistent_groups( array( 'np', 'np2' ) );
	wp_cache_set( 'k', 'v', 'np' );
	wp_cache_add( 'a', 'v', 'np2' );
	wp_cache_set_multiple( array( 'm1' => 1, 'm2' => 2 ), 'np' );
	eq( 'v', wp_cache_get( 'k', 'np' ), 'in this request' );
	eq( 'v', wp_cache_get( 'k', 'np', true ), 'in this request with force' );
	eq( false, $GLOBALS['wp_object_cache']->redis_key( 'k', 'np' ), 'no redis key for a non-persistent group' );
	eq( true, wp_cache_flush_group( 'np' ), 'flush_group of a non-persistent group' );
	wp_cache_set( 'k', 'v', 'np' );
	wp_cache_set( 'p', 'v', 'persistent' ); // so that there is something in redis
	next_request();
	wp_cache_add_non_persistent_groups( array( 'np', 'np2' ) );
	eq( false, wp_cache_get( 'k', 'np' ), 'not in the next request' );
	eq( false, wp_cache_get( 'a', 'np2' ), 'add not in the next request' );
}

function case_multisite_global_groups() {
	ok( is_multisite(), 'run with SP_MULTISITE=1' );
	wp_cache_init();
	wp_cache_add_global_groups( array( 'users' ) );
	wp_cache_set( 'u', 'user-of-network', 'users' );
	wp_cache_set( 'p', 'post-of-blog-1', 'posts' );
	wp_cache_switch_to_blog( 2 );
	eq( 'user-of-network', wp_cache_get( 'u', 'users' ), 'global group from blog 2' );
	eq( false, wp_cache_get( 'p', 'posts' ), 'blog 1 group from blog 2' );
	wp_cache_set( 'p', 'post-of-blog-2', 'posts' );
	wp_cache_switch_to_blog( 1 );
	eq( 'post-of-blog-1', wp_cache_get( 'p', 'posts' ), 'blog 1 keeps its value' );

	next_request();
	wp_cache_add_global_groups( 'users' );
	wp_cache_switch_to_blog( 2 );
	eq( 'user-of-network', wp_cache_get( 'u', 'users' ), 'global group from blog 2, next request' );
	eq( 'post-of-blog-2', wp_cache_get( 'p', 'posts' ), 'blog 2 value, next request' );
	ok( false !== strpos( $GLOBALS['wp_object_cache']->redis_key( 'p', 'posts' ), ':2:p' ), 'blog id in the key' );
	ok( false === strpos( $GLOBALS['wp_object_cache']->redis_key( 'u', 'users' ), ':2:u' ), 'no blog id in a global key' );

	// flush_group covers every blog.
	wp_cache_flush_group( 'posts' );
	next_request();
	eq( false, wp_cache_get( 'p', 'posts' ), 'blog 1 after flush_group' );
	wp_cache_switch_to_blog( 2 );
	eq( false, wp_cache_get( 'p', 'posts' ), 'blog 2 after flush_group' );
}

function case_single_site_ignores_switch() {
	wp_cache_init();
	wp_cache_set( 'p', 'v', 'posts' );
	wp_cache_switch_to_blog( 2 );
	eq( 'v', wp_cache_get( 'p', 'posts' ), 'switch_to_blog is a no-op on a single site, as in core' );
}

function case_clone() {
	wp_cache_init();
	$o = new stdClass();
	$o->v = 1;
	wp_cache_set( 'o', $o, 'g' );
	$o->v = 2;
	eq( 1, wp_cache_get( 'o', 'g' )->v, 'set stores a copy' );
	$got = wp_cache_get( 'o', 'g' );
	$got->v = 3;
	eq( 1, wp_cache_get( 'o', 'g' )->v, 'get returns a copy' );
	$a = new stdClass();
	$a->v = 1;
	wp_cache_add( 'a', $a, 'g' );
	$a->v = 2;
	eq( 1, wp_cache_get( 'a', 'g' )->v, 'add stores a copy' );
	wp_cache_replace( 'a', $a, 'g' );
	$a->v = 5;
	eq( 2, wp_cache_get( 'a', 'g' )->v, 'replace stores a copy' );
	$m = new stdClass();
	$m->v = 1;
	wp_cache_set_multiple( array( 'm' => $m ), 'g' );
	$m->v = 2;
	$many = wp_cache_get_multiple( array( 'm' ), 'g' );
	eq( 1, $many['m']->v, 'set_multiple stores a copy' );
	$many['m']->v = 3;
	eq( 1, wp_cache_get( 'm', 'g' )->v, 'get_multiple returns a copy' );
	next_request();
	$got = wp_cache_get( 'o', 'g' );
	$got->v = 9;
	eq( 1, wp_cache_get( 'o', 'g' )->v, 'a value read from redis is copied too' );
}

function case_expire() {
	wp_cache_init();
	wp_cache_set( 'one', 'v', 'g', 1 );
	wp_cache_set( 'none', 'v', 'g' );
	wp_cache_set( 'month', 'v', 'g', 40 * DAY );
	wp_cache_add( 'added', 'v', 'g', 1 );
	wp_cache_set( 'r', 'v', 'g' );
	wp_cache_replace( 'r', 'v2', 'g', 1 );
	wp_cache_set_multiple( array( 'm' => 1 ), 'g', 1 );
	wp_cache_add_multiple( array( 'am' => 1 ), 'g', 1 );
	wp_cache_set( 'neg', 'v', 'g', -5 );
	$ttl = function ( $k ) {
		return raw()->ttl( $GLOBALS['wp_object_cache']->redis_key( $k, 'g' ) );
	};
	eq( 1, $ttl( 'one' ), 'set with 1 s' );
	eq( -1, $ttl( 'none' ), 'set without expiration' );
	eq( 40 * DAY, $ttl( 'month' ), 'more than 30 days is still seconds' );
	eq( 1, $ttl( 'added' ), 'add with 1 s' );
	eq( 1, $ttl( 'r' ), 'replace with 1 s' );
	eq( 1, $ttl( 'm' ), 'set_multiple with 1 s' );
	eq( 1, $ttl( 'am' ), 'add_multiple with 1 s' );
	eq( -1, $ttl( 'neg' ), 'a negative expiration is none' );
	// Expiry itself is redis's job; make it happen now rather than sleeping.
	raw()->pexpire( $GLOBALS['wp_object_cache']->redis_key( 'one', 'g' ), 1 );
	usleep( 20000 );
	next_request();
	eq( false, wp_cache_get( 'one', 'g' ), 'expired' );
	eq( 'v', wp_cache_get( 'none', 'g' ), 'not expired' );
}
define( 'DAY', 86400 );

function case_invalid_keys() {
	wp_cache_init();
	$found = 'unset';
	eq( false, wp_cache_get( '', 'g', false, $found ), 'empty key' );
	eq( false, $found, 'empty key not found' );
	eq( false, wp_cache_set( ' ', 'v', 'g' ), 'blank key' );
	eq( false, wp_cache_add( null, 'v', 'g' ), 'null key' );
	eq( false, wp_cache_delete( array(), 'g' ), 'array key' );
	eq( false, wp_cache_incr( 1.5, 1, 'g' ), 'float key' );
	eq( array( '' => false, 'ok' => true ), wp_cache_set_multiple( array( '' => 1, 'ok' => 2 ), 'g' ), 'set_multiple with an empty key' );
	eq( true, wp_cache_set( 0, 'zero', 'g' ), 'int key 0 is valid' );
	eq( 'zero', wp_cache_get( 0, 'g' ), 'int key 0' );
	eq( 6, count( $GLOBALS['doing_it_wrong'] ), 'each invalid key reported: ' . implode( '; ', $GLOBALS['doing_it_wrong'] ) );
	ok( 0 === strpos( $GLOBALS['doing_it_wrong'][0], 'WP_Object_Cache::get' ), 'reported with the method: ' . $GLOBALS['doing_it_wrong'][0] );
}

function case_supports_and_misc() {
	wp_cache_init();
	foreach ( array( 'add_multiple', 'set_multiple', 'get_multiple', 'delete_multiple', 'flush_runtime', 'flush_group' ) as $f ) {
		eq( true, wp_cache_supports( $f ), "supports $f" );
	}
	eq( false, wp_cache_supports( 'something_else' ), 'unknown feature' );
	eq( true, wp_cache_close(), 'close' );
	wp_cache_set( 'k', 'v', 'g' );
	wp_cache_add_global_groups( 'gg' );
	wp_cache_set( 'k', 'v', 'gg' );
	wp_cache_reset();
	eq( array( 'wp_cache_reset' ), $GLOBALS['deprecated'], 'reset is deprecated' );
	ok( ! isset( $GLOBALS['wp_object_cache']->cache['g'] ), 'reset drops non-global groups from the runtime cache' );
	ok( isset( $GLOBALS['wp_object_cache']->cache['gg'] ), 'reset keeps global groups' );
	eq( 'v', wp_cache_get( 'k', 'g' ), 'redis still has it after reset' );

	// Closures cannot be serialized: the runtime cache keeps the value, redis not.
	$c = function () {};
	eq( true, wp_cache_set( 'closure', array( $c ), 'g' ), 'set of a closure' );
	ok( is_array( wp_cache_get( 'closure', 'g' ) ), 'closure in the runtime cache' );
	eq( 0, raw()->exists( $GLOBALS['wp_object_cache']->redis_key( 'closure', 'g' ) ), 'no closure in redis' );
	eq( 'connected', stat_of( 'status' ), 'redis is still in use' );

	ob_start();
	$GLOBALS['wp_object_cache']->stats();
	$html = ob_get_clean();
	ok( false !== strpos( $html, '<strong>Cache Hits:</strong>' ), 'stats() prints hits: ' . $html );
	ok( false !== strpos( $html, '<strong>Redis Calls:</strong>' ), 'stats() prints redis calls' );
	ok( $GLOBALS['wp_object_cache']->cache_hits > 0, 'cache_hits is public' );
}

function case_database() {
	$c = next_request( array( 'database' => 3 ) );
	wp_cache_set( 'k', 'in-db-3', 'g' );
	$key = $c->redis_key( 'k', 'g' );
	eq( 0, raw()->exists( $key ), 'not in database 0' );
	raw()->select( 3 );
	eq( 1, raw()->exists( $key ), 'in database 3' );
	raw()->select( 0 );
	next_request( array( 'database' => 3 ) );
	eq( 'in-db-3', wp_cache_get( 'k', 'g' ), 'read back from database 3' );
	next_request();
	eq( false, wp_cache_get( 'k', 'g' ), 'not visible from database 0' );
}

function case_gens_evicted() {
	wp_cache_init();
	wp_cache_set( 'k', 'before-flush', 'g' );
	wp_cache_flush();
	wp_cache_set( 'k', 'after-flush', 'g' );
	// Redis evicts the generations hash (allkeys-lru): the values from before
	// the flush must not come back.
	raw()->del( getenv( 'SP_PREFIX' ) . ':gens' );
	next_request();
	eq( false, wp_cache_get( 'k', 'g' ), 'no value after the generations were lost' );
	wp_cache_set( 'k', 'new', 'g' );
	next_request();
	eq( 'new', wp_cache_get( 'k', 'g' ), 'works with new generations' );
}

// Values in redis that the drop-in did not write with its key are misses,
// never unserialised, counted, and deleted; add() can then replace them.
function case_forged_values_are_misses() {
	wp_cache_init();
	wp_cache_set( 'valid', array( 'v' => 1 ), 'g' );
	wp_cache_set( 'int', 42, 'g' );
	$valid = raw()->get( rkey( 'valid', 'g' ) );
	$other = new WP_Object_Cache( array( 'signing_key' => str_repeat( 'k', 48 ) ) ); // another signing key
	$other->set( 'k', 'v', 'g' );
	$by_other = raw()->get( rkey( 'k', 'g' ) );

	$forged = array();
	foreach ( canary_payloads() as $name => $payload ) {
		$forged[ 'object, random mac: ' . $name ] = random_bytes( 32 ) . $payload;
		$forged[ 'object, no mac: ' . $name ]     = $payload;
	}
	$forged += array(
		// What an older drop-in wrote: no MAC at all.
		'old int'       => '42',
		'old string'    => 's:1:"v";',
		// A value signed for another key, moved here.
		'moved'         => $valid,
		// A valid value with one byte of its payload changed.
		'tampered'      => substr( $valid, 0, -1 ) . chr( ord( substr( $valid, -1 ) ) ^ 1 ),
		// A valid value with its MAC changed.
		'bad mac'       => chr( ord( $valid[0] ) ^ 1 ) . substr( $valid, 1 ),
		'signed with another key' => $by_other,
		'too short'     => 'x',
	);
	foreach ( $forged as $name => $raw ) {
		ok( is_string( $raw ) && '' !== $raw, "$name: built" );
		next_request();
		raw()->set( rkey( 'k', 'g' ), $raw );
		$found = null;
		eq( false, wp_cache_get( 'k', 'g', false, $found ), "$name: get" );
		eq( false, $found, "$name: not found" );
		canary_quiet( $name );
		eq( 1, stat_of( 'rejected' ), "$name: counted" );
		eq( 0, raw()->exists( rkey( 'k', 'g' ) ), "$name: deleted from redis" );
		eq( true, wp_cache_add( 'k', 'real', 'g' ), "$name: add after the rejection" );
		next_request();
		eq( 'real', wp_cache_get( 'k', 'g' ), "$name: the real value is used" );
		wp_cache_delete( 'k', 'g' );
	}

	// Batch reads: the forged keys are misses, the valid ones are read, one
	// MGET and one DEL.
	foreach ( canary_payloads() as $name => $payload ) {
		next_request();
		wp_cache_set( 'a', 'A', 'm' );
		raw()->set( rkey( 'b', 'm' ), random_bytes( 32 ) . $payload );
		raw()->set( rkey( 'c', 'm' ), $payload );
		next_request();
		$calls = stat_of( 'redis_calls' );
		eq( array( 'a' => 'A', 'b' => false, 'c' => false ), wp_cache_get_multiple( array( 'a', 'b', 'c' ), 'm' ), "get_multiple, $name" );
		canary_quiet( "get_multiple, $name" );
		eq( 2, stat_of( 'rejected' ), "get_multiple, $name: counted" );
		eq( 3, stat_of( 'redis_calls' ) - $calls, "get_multiple, $name: connect + MGET + DEL" );
		eq( 0, raw()->exists( rkey( 'b', 'm' ) ) + raw()->exists( rkey( 'c', 'm' ) ), "get_multiple, $name: deleted" );
	}

	// A counter that is not ours: incr/decr find nothing and touch nothing.
	foreach ( array( '41', random_bytes( 32 ) . '41', substr( $valid, 0, 32 ) . '41' ) as $i => $raw ) {
		next_request();
		raw()->set( rkey( 'n', 'g' ), $raw );
		eq( false, wp_cache_incr( 'n', 1, 'g' ), "incr of forged counter $i" );
		eq( 1, stat_of( 'rejected' ), "incr of forged counter $i: counted" );
		eq( 0, raw()->exists( rkey( 'n', 'g' ) ), "forged counter $i deleted" );
		raw()->set( rkey( 'n', 'g' ), $raw );
		eq( false, wp_cache_decr( 'n', 1, 'g' ), "decr of forged counter $i" );
	}
	next_request();
	eq( array( 'v' => 1 ), wp_cache_get( 'valid', 'g' ), 'the valid value is still read' );
	eq( 42, wp_cache_get( 'int', 'g' ), 'the valid int is still read' );
	eq( 0, stat_of( 'rejected' ), 'nothing rejected for valid values' );
}

// incr/decr with other requests changing the counter in between: nothing is
// lost, and the counter stays signed.
function case_incr_races() {
	wp_cache_init();
	wp_cache_set( 'c', 5, 'n' );
	$other = new WP_Object_Cache();
	eq( 6, $other->incr( 'c', 1, 'n' ), 'the other request increments' );
	eq( 7, $other->incr( 'c', 1, 'n' ), 'again' );
	$calls = stat_of( 'redis_calls' );
	eq( 8, wp_cache_incr( 'c', 1, 'n' ), 'this request holds 5 but counts on from 7' );
	eq( 2, stat_of( 'redis_calls' ) - $calls, 'a stale guess: a CAS that answers the current value, then a CAS' );
	$calls = stat_of( 'redis_calls' );
	eq( 9, wp_cache_incr( 'c', 1, 'n' ), 'the next incr' );
	eq( 1, stat_of( 'redis_calls' ) - $calls, 'a right guess: one round trip' );
	next_request();
	$calls = stat_of( 'redis_calls' );
	eq( 10, wp_cache_incr( 'c', 1, 'n' ), 'incr of a value not yet read' );
	eq( 1 + 2, stat_of( 'redis_calls' ) - $calls, 'connect, GET, CAS' );
	eq( 10, wp_cache_get( 'c', 'n', true ), 'read back' );
	eq( 0, stat_of( 'rejected' ), 'all signed' );

	// The counter disappears in between: false, as for a missing key.
	$other->delete( 'c', 'n' );
	eq( false, wp_cache_incr( 'c', 1, 'n' ), 'incr of a counter deleted elsewhere' );
	eq( false, wp_cache_get( 'c', 'n' ), 'and it is gone here too' );

	// Interleaved from two connections many times: every increment counts.
	$a = next_request();
	$b = new WP_Object_Cache();
	$a->set( 'n', 0, 'n' );
	for ( $i = 0; $i < 50; $i++ ) {
		$a->incr( 'n', 1, 'n' );
		$b->incr( 'n', 2, 'n' );
	}
	eq( 150, $a->get( 'n', 'n', true ), 'interleaved increments' );
}

// Redis goes away in the middle of a request: the request keeps going on its
// runtime cache, tries redis once, and no more.
function step_dies_mid_request() {
	wp_cache_init();
	wp_cache_set( 'k', 'v', 'g' );
	wp_cache_set( 'c', 1, 'g' );
	try {
		raw()->rawCommand( 'SHUTDOWN', 'NOSAVE' );
	} catch ( RedisException $e ) { // the connection drops: expected
	}
	usleep( 100000 );
	$t = microtime( true );
	eq( 'v', wp_cache_get( 'k', 'g', true ), 'forced get falls back to the runtime cache' );
	eq( 'down', stat_of( 'status' ), 'marked down' );
	eq( 1, stat_of( 'redis_errors' ), 'one error' );
	exercise_runtime_only();
	eq( 1, stat_of( 'redis_errors' ), 'still one error: no retries in this request' );
	eq( 1, stat_of( 'connects' ), 'no reconnects in this request' );
	ok( microtime( true ) - $t < 0.5, 'fast without redis' );
	file_put_contents( 'php://stdout', 'ok-runtime' . "\n" );
}

// Redis is unreachable from the start.
function step_down_from_start() {
	wp_cache_init();
	wp_cache_set( 'k', 'v', 'g' );
	eq( 'down', stat_of( 'status' ), 'marked down' );
	eq( 'v', wp_cache_get( 'k', 'g' ), 'runtime cache' );
	exercise_runtime_only();
	eq( 1, stat_of( 'connects' ) + stat_of( 'backoff_skips' ), 'one connect attempt (or a backoff skip), no more' );
	echo json_encode( $GLOBALS['wp_object_cache']->get_stats() ), "\n";
}

function exercise_runtime_only() {
	eq( true, wp_cache_add( 'a', 1, 'g' ), 'add' );
	eq( false, wp_cache_add( 'a', 2, 'g' ), 'add again' );
	eq( true, wp_cache_replace( 'a', 5, 'g' ), 'replace' );
	eq( false, wp_cache_replace( 'zz', 5, 'g' ), 'replace missing' );
	eq( 6, wp_cache_incr( 'a', 1, 'g' ), 'incr' );
	eq( 0, wp_cache_decr( 'a', 10, 'g' ), 'decr' );
	eq( array( 'x' => true ), wp_cache_set_multiple( array( 'x' => 'X' ), 'g' ), 'set_multiple' );
	eq( array( 'x' => 'X', 'y' => false ), wp_cache_get_multiple( array( 'x', 'y' ), 'g' ), 'get_multiple' );
	eq( array( 'y' => true ), wp_cache_add_multiple( array( 'y' => 'Y' ), 'g' ), 'add_multiple' );
	eq( array( 'y' => true, 'q' => false ), wp_cache_delete_multiple( array( 'y', 'q' ), 'g' ), 'delete_multiple' );
	eq( true, wp_cache_delete( 'x', 'g' ), 'delete' );
	$found = null;
	eq( false, wp_cache_get( 'x', 'g', false, $found ), 'deleted' );
	eq( false, $found, 'deleted, not found' );
	eq( true, wp_cache_flush_runtime(), 'flush_runtime' );
	eq( false, wp_cache_flush(), 'flush reports that redis was not flushed' );
	ob_start();
	$GLOBALS['wp_object_cache']->stats();
	ok( false !== strpos( ob_get_clean(), 'down' ), 'stats say down' );
}

// Without SCALEPRESS_OBJECT_CACHE_KEY the drop-in cannot check what redis
// holds: it does not use redis at all.
function step_no_signing_key() {
	raw()->set( 'probe', 'x' );
	next_request( array( 'signing_key' => '' ) );
	wp_cache_set( 'k', 'v', 'g' );
	eq( 'v', wp_cache_get( 'k', 'g' ), 'runtime cache' );
	eq( 'down', stat_of( 'status' ), 'redis not used' );
	ok( false !== strpos( stat_of( 'last_error' ), 'SCALEPRESS_OBJECT_CACHE_KEY' ), 'says why: ' . stat_of( 'last_error' ) );
	eq( array( 'probe' ), raw()->keys( '*' ), 'nothing written to redis' );
}

// Step by step from Go: write SP_KEY = SP_VALUE in group SP_GROUP (default g).
function step_set_value() {
	wp_cache_init();
	wp_cache_set( getenv( 'SP_KEY' ), getenv( 'SP_VALUE' ), sp_group() );
	echo json_encode( $GLOBALS['wp_object_cache']->get_stats() ), "\n";
}

// Step by step from Go: print SP_KEY's value (or "<miss>") and the stats.
function step_get_value() {
	wp_cache_init();
	$found = null;
	$v     = wp_cache_get( getenv( 'SP_KEY' ), sp_group(), false, $found );
	echo $found ? $v : '<miss>', "\n";
	echo json_encode( $GLOBALS['wp_object_cache']->get_stats() ), "\n";
}

// Step by step from Go: flush the site.
function step_flush() {
	wp_cache_init();
	wp_cache_flush();
	echo json_encode( $GLOBALS['wp_object_cache']->get_stats() ), "\n";
}

// Step by step from Go: flush group SP_GROUP.
function step_flush_group() {
	wp_cache_init();
	wp_cache_flush_group( sp_group() );
	echo json_encode( $GLOBALS['wp_object_cache']->get_stats() ), "\n";
}

function sp_group() {
	return getenv( 'SP_GROUP' ) ? getenv( 'SP_GROUP' ) : 'g';
}

// Redis stops answering (CLIENT PAUSE) while the request waits for a reply:
// the read timeout ends the wait, the request goes on without redis, and the
// pooled connection is not reused with a stale reply in it.
function step_read_timeout() {
	wp_cache_init();
	wp_cache_set( 'k', 'v1', 'g' );
	wp_cache_set( 'other', 'o', 'g' );
	raw()->rawCommand( 'CLIENT', 'PAUSE', '1000', 'ALL' );
	$t = microtime( true );
	eq( 'v1', wp_cache_get( 'k', 'g', true ), 'forced get during the pause: runtime cache' );
	$waited = microtime( true ) - $t;
	ok( $waited >= 0.4 && $waited < 1.5, "waited for the read timeout (0.5 s), $waited s" );
	eq( 'down', stat_of( 'status' ), 'marked down' );
	$t = microtime( true );
	eq( 'v1', wp_cache_get( 'k', 'g', true ), 'forced get again: no second wait' );
	eq( false, wp_cache_get( 'nope', 'g' ), 'a miss without redis' );
	ok( microtime( true ) - $t < 0.4, 'no second read timeout in this request' );
	eq( 1, stat_of( 'redis_errors' ), 'one error' );
	usleep( 800000 ); // the pause ends
	next_request(); // same process: the persistent connection pool is reused
	eq( 'o', wp_cache_get( 'other', 'g' ), 'the next request reads the right value' );
	eq( 'v1', wp_cache_get( 'k', 'g' ), 'and the right value for the key that timed out' );
	eq( 'connected', stat_of( 'status' ), 'connected again' );
	eq( 0, stat_of( 'repair_flushes' ), 'no flush: nothing was written while redis was away' );
}

// Without phpredis at all (php -n): the runtime cache alone, no fatal.
function step_no_extension() {
	ok( ! class_exists( 'Redis', false ), 'run with php -n' );
	wp_cache_init();
	wp_cache_set( 'k', 'v', 'g' );
	eq( 'v', wp_cache_get( 'k', 'g' ), 'runtime cache' );
	exercise_runtime_only();
	eq( 'down', stat_of( 'status' ), 'down' );
	ok( false !== strpos( stat_of( 'last_error' ), 'phpredis' ), 'says why: ' . stat_of( 'last_error' ) );
}

/*
 * Runner.
 */

$arg = isset( $argv[1] ) ? $argv[1] : '--list';
if ( '--list' === $arg ) {
	foreach ( get_defined_functions()['user'] as $f ) {
		if ( 0 === strpos( $f, 'case_' ) ) {
			echo substr( $f, 5 ), "\n";
		}
	}
	exit( 0 );
}
$fn = 0 === strpos( $arg, 'step_' ) ? $arg : 'case_' . $arg;
if ( ! function_exists( $fn ) ) {
	fwrite( STDERR, "no case $arg\n" );
	exit( 2 );
}
try {
	call_user_func( $fn );
} catch ( Failure $e ) {
	echo 'FAIL: ', $e->getMessage(), ' (line ', $e->getLine(), ")\n";
	exit( 1 );
}
echo "ok\n";
