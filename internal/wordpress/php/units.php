<?php
/**
 * Plugin Name: scalepress units
 * Description: Plugin and theme installs, updates and deletions from wp-admin reach every node as one unit, never file by file.
 * Author: scalepress
 *
 * Installed by scalepress as wp-content/mu-plugins/scalepress-units.php; edits are overwritten.
 * docs/adr/0026-atomic-change-sets.md has the why.
 *
 * WordPress's upgrader replaces a plugin's directory in place: it deletes the
 * old one and copies the new one file by file (install_package: clear_destination,
 * copy_dir). Around that, this plugin
 *   - closes the node's request gate (the flocks of the php-fpm
 *     auto_prepend_file, .filesync-stage/gate and inuse in the docroot): other
 *     requests of this node wait, those in flight finish first, so no request
 *     of this node runs the half-copied plugin; at most 10 s are waited for;
 *   - keeps a marker .filesync-stage/units/plugins.NAME (themes.NAME): while it
 *     exists the node's filesync agent pushes nothing of the directory, and
 *     when it is removed the agent pushes the whole directory as one unit,
 *     which every other node swaps in at once.
 * Begin: upgrader_source_selection (the directory's name is known, nothing
 * is deleted yet) and delete_plugin / delete_theme. End:
 * upgrader_install_package_result (also after a failed install),
 * deleted_plugin / deleted_theme, and at the latest the end of the request
 * (a fatal error included). Without the agent's directory (a tree not kept by
 * filesync) it does nothing.
 */

defined( 'ABSPATH' ) || exit;

final class Scalepress_Units {

	const WAIT_SECONDS = 10;

	/** @var string the upgrader's destination (WP_PLUGIN_DIR, a theme root) */
	private static $destination = '';
	/** @var string[] marker files of this request */
	private static $markers = array();
	/** @var resource[] the gate's lock files while held */
	private static $held = array();

	public static function boot() {
		add_filter( 'upgrader_package_options', array( __CLASS__, 'package_options' ), PHP_INT_MAX );
		add_filter( 'upgrader_source_selection', array( __CLASS__, 'source_selection' ), PHP_INT_MAX, 4 );
		add_filter( 'upgrader_install_package_result', array( __CLASS__, 'install_result' ), PHP_INT_MIN );
		add_action( 'delete_plugin', array( __CLASS__, 'delete_plugin' ) );
		add_action( 'deleted_plugin', array( __CLASS__, 'end' ) );
		add_action( 'delete_theme', array( __CLASS__, 'delete_theme' ) );
		add_action( 'deleted_theme', array( __CLASS__, 'end' ) );
		register_shutdown_function( array( __CLASS__, 'end' ) );
	}

	public static function package_options( $options ) {
		self::$destination = isset( $options['destination'] ) ? (string) $options['destination'] : '';
		return $options;
	}

	public static function source_selection( $source, $remote_source = '', $upgrader = null, $hook_extra = array() ) {
		if ( is_wp_error( $source ) || '' === self::$destination ) {
			return $source;
		}
		$dest = untrailingslashit( wp_normalize_path( self::$destination ) );
		$kind = '';
		if ( untrailingslashit( wp_normalize_path( WP_PLUGIN_DIR ) ) === $dest ) {
			$kind = 'plugins';
		} elseif ( untrailingslashit( wp_normalize_path( get_theme_root() ) ) === $dest ) {
			$kind = 'themes';
		}
		if ( '' !== $kind ) {
			self::begin( $kind, basename( untrailingslashit( $source ) ) );
		}
		return $source;
	}

	public static function install_result( $result ) {
		self::end();
		return $result;
	}

	public static function delete_plugin( $plugin_file ) {
		$dir = dirname( (string) $plugin_file );
		if ( '.' !== $dir && '' !== $dir ) {
			self::begin( 'plugins', $dir );
		}
	}

	public static function delete_theme( $stylesheet ) {
		self::begin( 'themes', (string) $stylesheet );
	}

	private static function stage() {
		return rtrim( ABSPATH, '/' ) . '/.filesync-stage/';
	}

	private static function begin( $kind, $name ) {
		if ( '' === $name || false !== strpos( $name, '/' ) || ! is_dir( self::stage() . 'units' ) ) {
			return;
		}
		$marker = self::stage() . 'units/' . $kind . '.' . $name;
		if ( false === @file_put_contents( $marker, '' ) ) {
			return;
		}
		self::$markers[] = $marker;
		self::hold();
	}

	/** Ends this request's units: the gate opens, the markers go. */
	public static function end() {
		self::release();
		foreach ( self::$markers as $marker ) {
			@unlink( $marker );
		}
		self::$markers = array();
	}

	private static function hold() {
		if ( self::$held ) {
			return;
		}
		// This request's own shared lock (taken by the auto_prepend_file)
		// would keep it from taking the lock exclusively.
		if ( isset( $GLOBALS['__scalepress_filesync_inuse'] ) ) {
			flock( $GLOBALS['__scalepress_filesync_inuse'], LOCK_UN );
		}
		foreach ( array( 'gate', 'inuse' ) as $name ) {
			$fp = @fopen( self::stage() . $name, 'rb' );
			if ( false === $fp ) {
				break;
			}
			$until = microtime( true ) + self::WAIT_SECONDS;
			while ( ! flock( $fp, LOCK_EX | LOCK_NB ) ) {
				if ( microtime( true ) > $until ) {
					error_log( 'scalepress: requests of this node still running after ' . self::WAIT_SECONDS . ' s; updating anyway' );
					break 2;
				}
				usleep( 1000 );
			}
			self::$held[] = $fp;
		}
	}

	private static function release() {
		foreach ( self::$held as $fp ) {
			flock( $fp, LOCK_UN );
			fclose( $fp );
		}
		if ( self::$held && isset( $GLOBALS['__scalepress_filesync_inuse'] ) ) {
			flock( $GLOBALS['__scalepress_filesync_inuse'], LOCK_SH );
		}
		self::$held = array();
	}
}

Scalepress_Units::boot();
