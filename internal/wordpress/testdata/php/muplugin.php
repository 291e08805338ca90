<?php
// Test harness for php/scalepress.php (the mu-plugin) with the few WordPress
// functions it uses stubbed. The hook callbacks are called the way WordPress
// calls them (do_action/apply_filters with the same arguments) and
// wp_remote_post records what would be sent.
//
//   php muplugin.php --list      the case names
//   php muplugin.php <case>      runs one case; exit 0 and "ok" on success
//   php -S addr muplugin.php     serves a page: /?page=<name> (see serve())
//
// Environment: SP_PLUGIN (the plugin file), SP_NO_PURGE (1: the purge
// constants are not defined).

error_reporting( E_ALL );
ini_set( 'display_errors', '1' );
set_error_handler(
	function ( $no, $str, $file, $line ) {
		if ( ! ( error_reporting() & $no ) ) {
			return false;
		}
		echo "PHP error $no: $str at $file:$line\n";
		exit( 3 );
	}
);

define( 'ABSPATH', __DIR__ . '/' );
if ( ! getenv( 'SP_NO_PURGE' ) ) {
	define( 'SCALEPRESS_PURGE_URL', 'http://127.0.0.1:9090/v1/purge' );
	define( 'SCALEPRESS_PURGE_SECRET', 's3cret' );
}

/*
 * A small WordPress.
 */

class WP_Post {
	public $ID;
	public $post_type   = 'post';
	public $post_status = 'publish';
	public $post_author = 0;
	public $post_parent = 0;
	public function __construct( array $f ) {
		foreach ( $f as $k => $v ) {
			$this->$k = $v;
		}
	}
}
class WP_Term {
	public $term_id;
	public $taxonomy;
	public function __construct( $id, $taxonomy ) {
		$this->term_id  = $id;
		$this->taxonomy = $taxonomy;
	}
}
class WP_User {
	public $ID;
	public function __construct( $id ) {
		$this->ID = $id;
	}
}
class WP_Comment {
	public $comment_ID;
	public $comment_post_ID;
	public $comment_approved;
	public function __construct( $id, $post_id, $approved ) {
		$this->comment_ID       = $id;
		$this->comment_post_ID  = $post_id;
		$this->comment_approved = $approved;
	}
}
class WP_Query {
	public function is_main_query() {
		return $GLOBALS['wp_the_query'] === $this;
	}
}
class WP_Error {
	public $message;
	public function __construct( $code = '', $message = '' ) {
		$this->message = $message;
	}
}

/** The state of the stub WordPress: the "database" survives next_request(). */
function world_reset() {
	$GLOBALS['W'] = array(
		'hooks'      => array(),
		'is'         => array(), // conditional tag => true
		'queried'    => null,
		'logged_in'  => false,
		'admin'      => false,
		'installing' => false,
		'posts'      => array(), // ID => WP_Post
		'terms'      => array(), // post ID => [ taxonomy => [ WP_Term ] ]
		'ancestors'  => array(), // term ID => [ IDs ]
		'comments'   => array(), // ID => WP_Comment
		'options'    => array(), // name => [ value, autoload ]
		'http'       => array(), // recorded wp_remote_post calls
		'responses'  => array(), // queued responses; default 200
	);
	$GLOBALS['wp_the_query'] = new WP_Query();
}
world_reset();

function add_filter( $hook, $cb, $priority = 10, $args = 1 ) {
	$GLOBALS['W']['hooks'][ $hook ][ $priority ][] = array( $cb, $args );
	return true;
}
function add_action( $hook, $cb, $priority = 10, $args = 1 ) {
	return add_filter( $hook, $cb, $priority, $args );
}
function apply_filters( $hook, $value, ...$rest ) {
	if ( empty( $GLOBALS['W']['hooks'][ $hook ] ) ) {
		return $value;
	}
	$by_priority = $GLOBALS['W']['hooks'][ $hook ];
	ksort( $by_priority );
	foreach ( $by_priority as $cbs ) {
		foreach ( $cbs as list( $cb, $n ) ) {
			$value = call_user_func_array( $cb, array_slice( array_merge( array( $value ), $rest ), 0, $n ) );
		}
	}
	return $value;
}
function do_action( $hook, ...$args ) {
	if ( empty( $GLOBALS['W']['hooks'][ $hook ] ) ) {
		return;
	}
	$by_priority = $GLOBALS['W']['hooks'][ $hook ];
	ksort( $by_priority );
	foreach ( $by_priority as $cbs ) {
		foreach ( $cbs as list( $cb, $n ) ) {
			call_user_func_array( $cb, array_slice( $args, 0, $n ) );
		}
	}
}
function has_hook( $hook ) {
	return ! empty( $GLOBALS['W']['hooks'][ $hook ] );
}

foreach ( array( 'is_404', 'is_front_page', 'is_home', 'is_feed', 'is_date', 'is_post_type_archive', 'is_preview', 'is_search', 'is_customize_preview' ) as $tag ) {
	eval( "function $tag() { return ! empty( \$GLOBALS['W']['is']['$tag'] ); }" );
}
function get_queried_object() {
	return $GLOBALS['W']['queried'];
}
function is_admin() {
	return $GLOBALS['W']['admin'];
}
function wp_doing_ajax() {
	return false;
}
function wp_doing_cron() {
	return false;
}
function is_user_logged_in() {
	return $GLOBALS['W']['logged_in'];
}
function wp_installing() {
	return $GLOBALS['W']['installing'];
}
function get_object_taxonomies( $post_type ) {
	return 'post' === $post_type ? array( 'category', 'post_tag', 'hidden_tax' ) : array();
}
function taxonomy_exists( $taxonomy ) {
	return in_array( $taxonomy, array( 'category', 'post_tag', 'hidden_tax', 'nav_menu' ), true );
}
function is_taxonomy_viewable( $taxonomy ) {
	return in_array( $taxonomy, array( 'category', 'post_tag' ), true );
}
function is_post_type_viewable( $post_type ) {
	return in_array( $post_type, array( 'post', 'page', 'attachment' ), true );
}
function get_the_terms( $post, $taxonomy ) {
	$id = $post instanceof WP_Post ? $post->ID : (int) $post;
	return isset( $GLOBALS['W']['terms'][ $id ][ $taxonomy ] ) ? $GLOBALS['W']['terms'][ $id ][ $taxonomy ] : false;
}
function get_ancestors( $id, $type = '', $resource = '' ) {
	return isset( $GLOBALS['W']['ancestors'][ $id ] ) ? $GLOBALS['W']['ancestors'][ $id ] : array();
}
function get_post( $id ) {
	$id = $id instanceof WP_Post ? $id->ID : (int) $id;
	return isset( $GLOBALS['W']['posts'][ $id ] ) ? $GLOBALS['W']['posts'][ $id ] : null;
}
function get_comment( $c ) {
	if ( $c instanceof WP_Comment ) {
		return $c;
	}
	return isset( $GLOBALS['W']['comments'][ (int) $c ] ) ? $GLOBALS['W']['comments'][ (int) $c ] : null;
}
function get_option( $name, $default = false ) {
	return isset( $GLOBALS['W']['options'][ $name ] ) ? $GLOBALS['W']['options'][ $name ][0] : $default;
}
function update_option( $name, $value, $autoload = null ) {
	$old                                 = $GLOBALS['W']['options'][ $name ] ?? null;
	$GLOBALS['W']['options'][ $name ] = array( $value, null === $old ? $autoload : $old[1] );
	do_action( 'updated_option', $name, $old ? $old[0] : false, $value );
	return true;
}
function delete_option( $name ) {
	unset( $GLOBALS['W']['options'][ $name ] );
	do_action( 'deleted_option', $name );
	return true;
}
function wp_remote_post( $url, $args ) {
	$GLOBALS['W']['http'][] = array( 'url' => $url, 'args' => $args );
	$r = array_shift( $GLOBALS['W']['responses'] );
	return null === $r ? array( 'response' => array( 'code' => 200 ) ) : $r;
}
function is_wp_error( $x ) {
	return $x instanceof WP_Error;
}
function wp_remote_retrieve_response_code( $r ) {
	return is_array( $r ) && isset( $r['response']['code'] ) ? $r['response']['code'] : '';
}

require getenv( 'SP_PLUGIN' );

/*
 * Helpers.
 */

class Failure extends Exception {}

function eq( $want, $got, $what ) {
	if ( $want !== $got ) {
		throw new Failure( $what . ":\n  want " . var_export( $want, true ) . "\n  got  " . var_export( $got, true ) );
	}
}

/** A new request: hooks and plugin state start over, the "database" stays. */
function next_request() {
	$db = array_intersect_key( $GLOBALS['W'], array_flip( array( 'options', 'posts', 'terms', 'ancestors', 'comments' ) ) );
	world_reset();
	$GLOBALS['W'] = $db + $GLOBALS['W'];
	Scalepress_Edge::reset();
	Scalepress_Edge::boot();
}

function post( $id, array $f = array() ) {
	$p = new WP_Post( $f + array( 'ID' => $id, 'post_author' => 3 ) );
	$GLOBALS['W']['posts'][ $id ] = $p;
	return $p;
}

function terms( $post_id, $taxonomy, array $ids ) {
	foreach ( $ids as $id ) {
		$GLOBALS['W']['terms'][ $post_id ][ $taxonomy ][] = new WP_Term( $id, $taxonomy );
	}
}

/** Runs the main query the way WP::main() does, then the 'wp' action's tags. */
function main_query( array $posts ) {
	apply_filters( 'the_posts', $posts, $GLOBALS['wp_the_query'] );
}

function page_tags() {
	return Scalepress_Edge::instance()->page_tags();
}

/** The JSON bodies sent so far. */
function sent() {
	$out = array();
	foreach ( $GLOBALS['W']['http'] as $call ) {
		$out[] = json_decode( $call['args']['body'], true );
	}
	return $out;
}

function shutdown() {
	do_action( 'shutdown' );
}

/*
 * Cases: tags.
 */

function case_tags_single_post() {
	$p = post( 12 );
	terms( 12, 'category', array( 5 ) );
	terms( 12, 'post_tag', array( 7, 8 ) );
	terms( 12, 'hidden_tax', array( 99 ) );
	$GLOBALS['W']['queried'] = $p;
	main_query( array( $p ) );
	eq( array( 'post-12', 'author-3', 'term-5', 'term-7', 'term-8' ), page_tags(), 'single post' );
}

function case_tags_home() {
	$posts = array( post( 1 ), post( 2, array( 'post_author' => 4 ) ), post( 3 ) );
	terms( 1, 'category', array( 5 ) );
	terms( 2, 'category', array( 5, 6 ) );
	$GLOBALS['W']['is'] = array( 'is_home' => true, 'is_front_page' => true );
	main_query( $posts );
	eq( array( 'home', 'post-1', 'author-3', 'term-5', 'post-2', 'author-4', 'term-6', 'post-3' ), page_tags(), 'home, deduplicated' );
}

function case_tags_static_front_page() {
	$p = post( 40, array( 'post_type' => 'page' ) );
	$GLOBALS['W']['is'] = array( 'is_front_page' => true );
	$GLOBALS['W']['queried'] = $p;
	main_query( array( $p ) );
	eq( array( 'home', 'post-40', 'author-3' ), page_tags(), 'static front page' );
}

function case_tags_feeds() {
	$posts = array( post( 1 ), post( 2 ) );
	$GLOBALS['W']['is'] = array( 'is_feed' => true );
	main_query( $posts );
	eq( array( 'feed', 'post-1', 'author-3', 'post-2' ), page_tags(), 'feed' );

	next_request();
	$p = post( 12 );
	$GLOBALS['W']['is'] = array( 'is_feed' => true );
	$GLOBALS['W']['queried'] = $p;
	main_query( array() ); // a comment feed's main query holds comments
	eq( array( 'feed', 'post-12', 'feed-12', 'author-3' ), page_tags(), 'comment feed of a post' );
}

function case_tags_archives() {
	$posts = array( post( 1 ), post( 2 ) );
	$GLOBALS['W']['queried'] = new WP_Term( 5, 'category' );
	main_query( $posts );
	eq( array( 'term-5', 'post-1', 'author-3', 'post-2' ), page_tags(), 'term archive' );

	next_request();
	$GLOBALS['W']['queried'] = new WP_User( 3 );
	main_query( $posts );
	eq( array( 'author-3', 'post-1', 'post-2' ), page_tags(), 'author archive' );

	next_request();
	$GLOBALS['W']['is'] = array( 'is_date' => true );
	main_query( $posts );
	eq( array( 'archive', 'post-1', 'author-3', 'post-2' ), page_tags(), 'date archive' );

	next_request();
	$GLOBALS['W']['is'] = array( 'is_post_type_archive' => true );
	main_query( array() );
	eq( array( 'archive' ), page_tags(), 'post type archive' );

	next_request();
	$GLOBALS['W']['is'] = array( 'is_404' => true );
	main_query( array() );
	eq( array( '404' ), page_tags(), 'not found' );
}

function case_tags_only_main_query() {
	$GLOBALS['W']['is'] = array( 'is_home' => true );
	main_query( array( post( 1 ) ) );
	apply_filters( 'the_posts', array( post( 50 ) ), new WP_Query() ); // a widget's query
	eq( array( 'home', 'post-1', 'author-3' ), page_tags(), 'secondary queries do not replace the main one' );
}

function case_tags_cap() {
	$posts = array();
	for ( $i = 1; $i <= 150; $i++ ) {
		$posts[] = post( $i, array( 'post_author' => $i ) ); // 150 posts + 150 authors
	}
	$GLOBALS['W']['is'] = array( 'is_home' => true, 'is_front_page' => true );
	main_query( $posts );
	eq( array( 'home', 'overflow' ), page_tags(), 'over 200 tags' );

	next_request();
	$posts = array();
	for ( $i = 1; $i <= 100; $i++ ) {
		$posts[] = post( $i, array( 'post_author' => 1 ) );
	}
	$GLOBALS['W']['is'] = array( 'is_home' => true );
	main_query( $posts );
	eq( 102, count( page_tags() ), 'under the cap: home, 100 posts, 1 author' );
}

function case_tags_filter() {
	add_filter(
		'scalepress_page_tags',
		function ( $tags ) {
			$tags[] = 'custom-1';
			$tags[] = "bad tag\r\nX-Injected: 1";
			$tags[] = 'home';
			return $tags;
		}
	);
	$GLOBALS['W']['is'] = array( 'is_home' => true );
	main_query( array() );
	eq( array( 'home', 'custom-1' ), page_tags(), 'filtered, cleaned, deduplicated' );
}

function case_cacheable_request() {
	$s = Scalepress_Edge::instance();
	$_SERVER['REQUEST_METHOD'] = 'GET';
	eq( true, $s->cacheable_request(), 'anonymous GET' );
	$_SERVER['REQUEST_METHOD'] = 'HEAD';
	eq( true, $s->cacheable_request(), 'anonymous HEAD' );
	$_SERVER['REQUEST_METHOD'] = 'POST';
	eq( false, $s->cacheable_request(), 'POST' );
	$_SERVER['REQUEST_METHOD'] = 'GET';
	$GLOBALS['W']['logged_in'] = true;
	eq( false, $s->cacheable_request(), 'logged in' );
	$GLOBALS['W']['logged_in'] = false;
	$GLOBALS['W']['admin'] = true;
	eq( false, $s->cacheable_request(), 'wp-admin' );
	$GLOBALS['W']['admin'] = false;
	foreach ( array( 'is_preview', 'is_search', 'is_customize_preview' ) as $tag ) {
		$GLOBALS['W']['is'] = array( $tag => true );
		eq( false, $s->cacheable_request(), $tag );
	}
}

/*
 * Cases: purges.
 */

function want_request( array $body, $what ) {
	eq( 1, count( $GLOBALS['W']['http'] ), "$what: one request" );
	$call = $GLOBALS['W']['http'][0];
	eq( 'http://127.0.0.1:9090/v1/purge', $call['url'], "$what: url" );
	eq( 'Bearer s3cret', $call['args']['headers']['Authorization'], "$what: authorization" );
	eq( 'application/json', $call['args']['headers']['Content-Type'], "$what: content type" );
	eq( 2, $call['args']['timeout'], "$what: timeout" );
	eq( true, $call['args']['blocking'], "$what: blocking" );
	eq( $body, json_decode( $call['args']['body'], true ), "$what: body" );
}

function case_purge_post_published() {
	$p = post( 12, array( 'post_author' => 3 ) );
	terms( 12, 'category', array( 5 ) );
	terms( 12, 'post_tag', array( 7 ) );
	terms( 12, 'hidden_tax', array( 99 ) );
	$GLOBALS['W']['ancestors'][5] = array( 2, 1 );
	do_action( 'transition_post_status', 'publish', 'draft', $p );
	eq( array(), $GLOBALS['W']['http'], 'nothing sent before shutdown' );
	shutdown();
	want_request(
		array(
			'tags' => array( 'post-12', 'home', 'feed', 'archive', '404', 'author-3', 'term-5', 'term-2', 'term-1', 'term-7', 'overflow' ),
			'soft' => true,
		),
		'publish'
	);
	eq( false, get_option( Scalepress_Edge::PENDING_OPTION ), 'nothing pending after success' );
}

function case_purge_post_transitions() {
	$p    = post( 12 );
	$runs = array(
		array( 'publish', 'publish', true, 'update of a published post' ),
		array( 'trash', 'publish', true, 'trashed' ),
		array( 'draft', 'publish', true, 'unpublished' ),
		array( 'publish', 'future', true, 'scheduled post goes live' ),
		array( 'draft', 'draft', false, 'draft saved' ),
		array( 'auto-draft', 'new', false, 'new auto-draft' ),
		array( 'private', 'draft', false, 'private' ),
	);
	foreach ( $runs as list( $new, $old, $purges, $what ) ) {
		next_request();
		do_action( 'transition_post_status', $new, $old, $p );
		shutdown();
		eq( $purges ? 1 : 0, count( $GLOBALS['W']['http'] ), $what );
	}
	next_request();
	do_action( 'transition_post_status', 'publish', 'draft', post( 13, array( 'post_type' => 'shop_order' ) ) );
	shutdown();
	eq( array(), sent(), 'a type that is not viewable' );
	foreach ( array( 'wp_block', 'wp_template', 'wp_template_part', 'wp_global_styles', 'wp_navigation' ) as $type ) {
		next_request();
		do_action( 'transition_post_status', 'publish', 'publish', post( 14, array( 'post_type' => $type ) ) );
		shutdown();
		eq( array( array( 'all' => true, 'soft' => true ) ), sent(), $type );
	}
}

function case_purge_delete_and_attachments() {
	$p = post( 12 );
	do_action( 'before_delete_post', 12, $p );
	shutdown();
	eq( array( 'post-12', 'home', 'feed', 'archive', '404', 'author-3', 'overflow' ), sent()[0]['tags'], 'deleted post' );

	next_request();
	post( 13, array( 'post_status' => 'trash' ) );
	do_action( 'before_delete_post', 13, get_post( 13 ) );
	shutdown();
	eq( array(), sent(), 'deleting a trashed post: purged when trashed' );

	next_request();
	post( 20, array( 'post_type' => 'attachment', 'post_status' => 'inherit', 'post_parent' => 12 ) );
	do_action( 'edit_attachment', 20 );
	shutdown();
	eq( array( 'post-20', 'post-12', 'overflow' ), sent()[0]['tags'], 'attachment edited' );
}

function case_purge_once_per_request() {
	post( 1 );
	post( 2, array( 'post_author' => 4 ) );
	do_action( 'transition_post_status', 'publish', 'publish', get_post( 1 ) );
	do_action( 'transition_post_status', 'publish', 'publish', get_post( 2 ) );
	do_action( 'edited_term', 5, 55, 'category' );
	shutdown();
	eq( array( array( 'tags' => array( 'post-1', 'home', 'feed', 'archive', '404', 'author-3', 'post-2', 'author-4', 'term-5', 'overflow' ), 'soft' => true ) ), sent(), 'one merged request' );
	shutdown();
	eq( 1, count( sent() ), 'a second shutdown sends nothing more' );

	next_request(); // another plugin purges from its own shutdown callback
	add_action(
		'shutdown',
		function () {
			scalepress_purge_tags( array( 'post-9' ) );
		},
		10
	);
	scalepress_purge_tags( array( 'post-8' ) );
	shutdown();
	eq( array( array( 'tags' => array( 'post-8', 'overflow' ), 'soft' => true ), array( 'tags' => array( 'post-9', 'overflow' ), 'soft' => true ) ), sent(), 'late purge sent by the second pass' );

	next_request(); // same, with the controller down: one attempt only
	$GLOBALS['W']['responses'][] = new WP_Error( 'http_request_failed', 'timed out' );
	add_action(
		'shutdown',
		function () {
			scalepress_purge_tags( array( 'post-9' ) );
		},
		10
	);
	scalepress_purge_tags( array( 'post-8' ) );
	shutdown();
	eq( 1, count( sent() ), 'no second attempt after a failure' );
	eq( array( 'post-8', 'post-9', 'overflow' ), get_option( Scalepress_Edge::PENDING_OPTION )['tags'], 'both kept for later' );
	delete_option( Scalepress_Edge::PENDING_OPTION );

	next_request();
	do_action( 'transition_post_status', 'publish', 'publish', get_post( 1 ) );
	do_action( 'switch_theme', 'x', null, null );
	shutdown();
	eq( array( array( 'all' => true, 'soft' => true ) ), sent(), 'all wins over tags' );
}

function case_purge_comments() {
	post( 12 );
	$GLOBALS['W']['comments'][100] = new WP_Comment( 100, 12, '1' );
	$GLOBALS['W']['comments'][101] = new WP_Comment( 101, 12, '0' );
	$want                           = array( array( 'tags' => array( 'post-12', 'feed', 'feed-12', 'overflow' ), 'soft' => true ) );
	$runs                           = array(
		array( 'comment_post', array( 100, 1, array() ), true, 'approved comment posted' ),
		array( 'comment_post', array( 101, 0, array() ), false, 'held comment posted' ),
		array( 'comment_post', array( 101, 'spam', array() ), false, 'spam posted' ),
		array( 'edit_comment', array( 100, array() ), true, 'approved comment edited' ),
		array( 'edit_comment', array( 101, array() ), false, 'held comment edited' ),
		array( 'delete_comment', array( 100, $GLOBALS['W']['comments'][100] ), true, 'approved comment deleted' ),
		array( 'transition_comment_status', array( 'approved', 'unapproved', $GLOBALS['W']['comments'][101] ), true, 'comment approved' ),
		array( 'transition_comment_status', array( 'trash', 'approved', $GLOBALS['W']['comments'][100] ), true, 'comment trashed' ),
		array( 'transition_comment_status', array( 'spam', 'unapproved', $GLOBALS['W']['comments'][101] ), false, 'held comment marked spam' ),
	);
	foreach ( $runs as list( $hook, $args, $purges, $what ) ) {
		next_request();
		do_action( $hook, ...$args );
		shutdown();
		eq( $purges ? $want : array(), sent(), $what );
	}
}

function case_purge_terms_users_options() {
	$runs = array(
		array( 'edited_term', array( 5, 55, 'category', array() ), array( 'tags' => array( 'term-5', 'overflow' ) ), 'category edited' ),
		array( 'delete_term', array( 7, 77, 'post_tag', new WP_Term( 7, 'post_tag' ), array( 1, 2 ) ), array( 'tags' => array( 'term-7', 'overflow' ) ), 'tag deleted' ),
		array( 'edited_term', array( 9, 99, 'hidden_tax', array() ), null, 'taxonomy that is not viewable' ),
		array( 'edited_term', array( 3, 33, 'nav_menu', array() ), array( 'all' => true ), 'nav menu term' ),
		array( 'profile_update', array( 3, null, array() ), array( 'tags' => array( 'author-3', 'overflow' ) ), 'profile' ),
		array( 'delete_user', array( 3, null, null ), array( 'tags' => array( 'author-3', 'overflow' ) ), 'user deleted with posts' ),
		array( 'delete_user', array( 3, 1, null ), array( 'all' => true ), 'user deleted, posts reassigned' ),
		array( 'updated_option', array( 'blogname', 'a', 'b' ), array( 'all' => true ), 'site title' ),
		array( 'updated_option', array( 'permalink_structure', 'a', 'b' ), array( 'all' => true ), 'permalinks' ),
		array( 'updated_option', array( 'active_plugins', array(), array( 'x' ) ), array( 'all' => true ), 'plugins' ),
		array( 'updated_option', array( 'widget_block', array(), array( 1 ) ), array( 'all' => true ), 'widgets' ),
		array( 'added_option', array( 'widget_block', array() ), null, 'widget defaults added on a first page view' ),
		array( 'added_option', array( 'theme_mods_twentytwentythree', array() ), null, 'theme mod defaults added on a first page view' ),
		array( 'updated_option', array( 'theme_mods_twentytwentythree', array(), array() ), array( 'all' => true ), 'theme mods' ),
		array( 'deleted_option', array( 'page_on_front' ), array( 'all' => true ), 'front page' ),
		array( 'updated_option', array( 'sticky_posts', array(), array( 1 ) ), array( 'tags' => array( 'home', 'overflow' ) ), 'sticky posts' ),
		array( 'updated_option', array( 'cron', array(), array() ), null, 'cron' ),
		array( 'updated_option', array( 'rewrite_rules', array(), array() ), null, 'rewrite rules' ),
		array( 'wp_update_nav_menu', array( 3, array() ), array( 'all' => true ), 'menu saved' ),
		array( 'wp_delete_nav_menu', array( 3 ), array( 'all' => true ), 'menu deleted' ),
		array( 'customize_save_after', array( null ), array( 'all' => true ), 'customizer' ),
		array( 'upgrader_process_complete', array( null, array() ), array( 'all' => true ), 'update' ),
	);
	foreach ( $runs as list( $hook, $args, $want, $what ) ) {
		next_request();
		do_action( $hook, ...$args );
		shutdown();
		eq( null === $want ? array() : array( $want + array( 'soft' => true ) ), sent(), $what );
	}
}

function case_purge_failure_is_retried() {
	post( 1 );
	$GLOBALS['W']['responses'][] = new WP_Error( 'http_request_failed', 'Connection refused' );
	do_action( 'transition_post_status', 'publish', 'publish', get_post( 1 ) );
	shutdown();
	eq( 1, count( sent() ), 'tried once' );
	$pending = $GLOBALS['W']['options'][ Scalepress_Edge::PENDING_OPTION ];
	eq( false, $pending[1], 'pending purge is not autoloaded' );
	eq( array( 'post-1', 'home', 'feed', 'archive', '404', 'author-3', 'overflow' ), $pending[0]['tags'], 'pending tags' );
	eq( 1, $pending[0]['attempts'], 'attempts' );
	$next = $pending[0]['next'];
	if ( $next < time() + 4 || $next > time() + 5 ) {
		throw new Failure( 'backoff of 5 s, got ' . ( $next - time() ) );
	}

	next_request(); // a page view, before the backoff ends
	shutdown();
	eq( array(), sent(), 'no retry before the backoff ends' );

	next_request(); // a page view after the backoff; the controller answers 500
	$GLOBALS['W']['options'][ Scalepress_Edge::PENDING_OPTION ][0]['next'] = time() - 1;
	$GLOBALS['W']['responses'][] = array( 'response' => array( 'code' => 500 ) );
	shutdown();
	eq( 1, count( sent() ), 'retried after the backoff' );
	eq( 2, get_option( Scalepress_Edge::PENDING_OPTION )['attempts'], 'second attempt recorded' );
	$next = get_option( Scalepress_Edge::PENDING_OPTION )['next'];
	if ( $next < time() + 9 || $next > time() + 10 ) {
		throw new Failure( 'backoff of 10 s, got ' . ( $next - time() ) );
	}

	next_request(); // a change before the backoff ends: sent now, merged
	post( 2 );
	do_action( 'edited_term', 5, 55, 'category' );
	shutdown();
	eq(
		array( array( 'tags' => array( 'post-1', 'home', 'feed', 'archive', '404', 'author-3', 'term-5', 'overflow' ), 'soft' => true ) ),
		sent(),
		'pending merged with the new change'
	);
	eq( false, get_option( Scalepress_Edge::PENDING_OPTION ), 'pending cleared after success' );

	next_request();
	shutdown();
	eq( array(), sent(), 'nothing to send' );

	next_request(); // a stored purge with nothing in it is dropped, not sent
	update_option( Scalepress_Edge::PENDING_OPTION, array( 'all' => false, 'tags' => array( 'bad tag' ), 'next' => 0 ), false );
	shutdown();
	eq( array(), sent(), 'empty pending purge not sent' );
	eq( false, get_option( Scalepress_Edge::PENDING_OPTION ), 'empty pending purge dropped' );
}

function case_purge_pending_is_bounded() {
	$tags = array();
	for ( $i = 0; $i < 499; $i++ ) {
		$tags[] = "post-$i";
	}
	eq( array( 'all' => false, 'tags' => array_merge( $tags, array( 'overflow' ) ) ), Scalepress_Edge::merge( array( 'tags' => $tags ), array( 'all' => false, 'tags' => array( 'overflow' ) ) ), '499 tags' );
	eq( 501, count( Scalepress_Edge::merge( array( 'tags' => $tags ), array( 'all' => false, 'tags' => array( 'x-1' ) ) )['tags'] ), '500 tags + overflow' );
	eq( array( 'all' => true, 'tags' => array() ), Scalepress_Edge::merge( array( 'tags' => $tags ), array( 'all' => false, 'tags' => array( 'x-1', 'x-2' ) ) ), '501 tags become all' );
	eq( array( 'all' => true, 'tags' => array() ), Scalepress_Edge::merge( array( 'all' => true, 'tags' => array() ), array( 'all' => false, 'tags' => array( 'x-1' ) ) ), 'all stays all' );
	eq( array( 'all' => false, 'tags' => array( 'a', 'b', 'overflow' ) ), Scalepress_Edge::merge( array( 'tags' => array( 'a', 'overflow', 7, 'b c' ) ), array( 'all' => false, 'tags' => array( 'b', 'a' ) ) ), 'merged, cleaned' );
	eq( array( 'all' => false, 'tags' => array() ), Scalepress_Edge::merge( null, array( 'all' => false, 'tags' => array() ) ), 'nothing' );
}

function case_purge_soft_filter() {
	add_filter( 'scalepress_purge_soft', '__return_false' );
	scalepress_purge_tags( array( 'post-1' ) );
	shutdown();
	eq( array( array( 'tags' => array( 'post-1', 'overflow' ), 'soft' => false ) ), sent(), 'hard purge' );

	next_request();
	scalepress_purge_all();
	shutdown();
	eq( array( array( 'all' => true, 'soft' => true ) ), sent(), 'scalepress_purge_all' );
}
function __return_false() {
	return false;
}

function case_purge_not_while_installing() {
	$GLOBALS['W']['installing'] = true;
	do_action( 'transition_post_status', 'publish', 'new', post( 1 ) );
	shutdown();
	eq( array(), sent(), 'nothing sent while installing' );
}

function case_updates_are_scalepress_releases() {
	eq( false, apply_filters( 'auto_update_core', true ), 'no background core update' );
	$tests = array(
		'direct' => array( 'php_version' => array( 'label' => 'PHP', 'test' => 'php_version' ) ),
		'async'  => array(
			'background_updates'   => array( 'label' => 'Background updates', 'test' => 'http://x/wp-json/wp-site-health/v1/tests/background-updates' ),
			'dotorg_communication' => array( 'label' => 'WordPress.org', 'test' => 'http://x/dotorg' ),
		),
	);
	$got = apply_filters( 'site_status_tests', $tests );
	eq( array( 'dotorg_communication' ), array_keys( $got['async'] ), 'the background-update test is gone' );
	eq( array( 'php_version', 'scalepress_updates' ), array_keys( $got['direct'] ), 'scalepress\'s test is direct' );
	$test = $got['direct']['scalepress_updates']['test'];
	eq( true, is_callable( $test ), 'its test is callable, as Site Health calls it' );
	$result = call_user_func( $test );
	eq( 'good', $result['status'], 'it passes' );
	eq( 'scalepress_updates', $result['test'], 'named' );
}

function case_no_constants() {
	if ( defined( 'SCALEPRESS_PURGE_URL' ) ) {
		throw new Failure( 'run with SP_NO_PURGE=1' );
	}
	foreach ( array( 'transition_post_status', 'comment_post', 'updated_option', 'deleted_option', 'shutdown' ) as $hook ) {
		eq( false, has_hook( $hook ), "no $hook hook" );
	}
	do_action( 'transition_post_status', 'publish', 'draft', post( 1 ) );
	scalepress_purge_all();
	shutdown();
	Scalepress_Edge::instance()->send_purges();
	eq( array(), sent(), 'nothing sent' );
	$GLOBALS['W']['is'] = array( 'is_home' => true );
	main_query( array( post( 1 ) ) );
	eq( array( 'home', 'post-1', 'author-3' ), page_tags(), 'pages are still tagged' );
}

/*
 * php -S: a page served for real, to see the header on the wire.
 */

function serve() {
	$_SERVER['REQUEST_METHOD'] = $_SERVER['REQUEST_METHOD'] ?? 'GET';
	switch ( $_GET['page'] ?? '' ) {
		case 'post':
			$p = post( 12 );
			terms( 12, 'category', array( 5 ) );
			$GLOBALS['W']['queried'] = $p;
			main_query( array( $p ) );
			break;
		case 'home-logged-in':
			$GLOBALS['W']['logged_in'] = true;
			// fall through
		case 'home':
			$GLOBALS['W']['is'] = array( 'is_home' => true, 'is_front_page' => true );
			main_query( array( post( 1 ), post( 2 ) ) );
			break;
	}
	do_action( 'wp' ); // WP::main() ends with it; the template's output follows
	echo "<html>page</html>\n";
	do_action( 'shutdown' );
}

/*
 * Runner.
 */

if ( 'cli-server' === PHP_SAPI ) {
	serve();
	return;
}
$arg = isset( $argv[1] ) ? $argv[1] : '--list';
if ( '--list' === $arg ) {
	foreach ( get_defined_functions()['user'] as $f ) {
		if ( 0 === strpos( $f, 'case_' ) ) {
			echo substr( $f, 5 ), "\n";
		}
	}
	exit( 0 );
}
if ( ! function_exists( 'case_' . $arg ) ) {
	fwrite( STDERR, "no case $arg\n" );
	exit( 2 );
}
try {
	call_user_func( 'case_' . $arg );
} catch ( Failure $e ) {
	echo 'FAIL: ', $e->getMessage(), ' (line ', $e->getLine(), ")\n";
	exit( 1 );
}
echo "ok\n";
