<?php
// One run of the object-cache drop-in against a real redis: µs per call.
//   php run.php DROPIN PORT [PASSWORD]
// Values: a 20-byte string, an int, a 12 KB array (the size of a small
// site's alloptions), 20 values of ~220 bytes read with one get_multiple.
define( 'ABSPATH', __DIR__ . '/' );
define( 'WP_REDIS_HOST', '127.0.0.1' );
define( 'WP_REDIS_PORT', (int) $argv[2] );
if ( isset( $argv[3] ) ) {
	define( 'WP_REDIS_PASSWORD', $argv[3] );
}
define( 'WP_CACHE_KEY_SALT', 'bench-' . getmypid() );
define( 'WP_REDIS_STATE_DIR', sys_get_temp_dir() );
define( 'WP_REDIS_RETRY_INTERVAL', 0 );
define( 'SCALEPRESS_OBJECT_CACHE_KEY', str_repeat( 'k', 64 ) );
require $argv[1];

$small = 'a short string value';
$big   = array();
for ( $i = 0; $i < 400; $i++ ) {
	$big[ "option_$i" ] = str_repeat( 'x', 100 + $i % 50 );
}
$c = new WP_Object_Cache();
$c->set( 'small', $small, 'g' );
$c->set( 'big', $big, 'g' );
$c->set( 'int', 5, 'g' );
$keys = array();
for ( $i = 0; $i < 20; $i++ ) {
	$c->set( "m$i", array( 'i' => $i, 's' => str_repeat( 'y', 200 ) ), 'm' );
	$keys[] = "m$i";
}
$time = function ( $name, $n, $fn ) {
	$t = hrtime( true );
	for ( $i = 0; $i < $n; $i++ ) {
		$fn();
	}
	printf( "%s %.1f\n", $name, ( hrtime( true ) - $t ) / 1e3 / $n );
};
$time( 'get_small', 20000, function () use ( $c ) { $c->get( 'small', 'g', true ); } );
$time( 'get_int', 20000, function () use ( $c ) { $c->get( 'int', 'g', true ); } );
$time( 'get_12KB', 5000, function () use ( $c ) { $c->get( 'big', 'g', true ); } );
$time( 'get_multiple_20', 5000, function () use ( $c, $keys ) { $c->get_multiple( $keys, 'm', true ); } );
$time( 'set_small', 20000, function () use ( $c, $small ) { $c->set( 'small', $small, 'g' ); } );
$time( 'set_12KB', 2000, function () use ( $c, $big ) { $c->set( 'big', $big, 'g' ); } );
$time( 'incr', 10000, function () use ( $c ) { $c->incr( 'int', 1, 'g' ); } );
$s = $c->get_stats();
if ( 'connected' !== $s['status'] || ! empty( $s['rejected'] ) ) {
	fwrite( STDERR, 'bad run: ' . json_encode( $s ) . "\n" );
	exit( 1 );
}
