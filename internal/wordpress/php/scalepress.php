<?php
/**
 * Plugin Name: scalepress
 * Description: Tags pages for the scalepress edge cache and purges them when content changes.
 * Author: scalepress
 *
 * Installed by scalepress as wp-content/mu-plugins/scalepress.php; edits are overwritten.
 *
 * TAGS. An anonymous front-end GET/HEAD (not logged in, not a preview, not a
 * search, not wp-admin, AJAX, REST or cron) gets the response header
 *   X-Scalepress-Tags: post-12 term-3 author-1 home feed ...
 * which the edge stores with the page and strips before the client sees it.
 * Vocabulary:
 *   post-<ID>    every post of the main query and the queried post
 *   term-<ID>    the queried term, and the terms (of viewable taxonomies) of
 *                every post in the main query
 *   author-<ID>  the queried author, and the author of every post in the main query
 *   home         the front page and the posts page (and their pages 2, 3, ...)
 *   feed         every feed
 *   feed-<ID>    the comment feed of post <ID>
 *   archive      date archives and post type archives
 *   404          not found
 *   overflow     replaces the per-item tags when a page would carry more than
 *                200 tags; every tag purge below also purges "overflow"
 * Tags are deduplicated. Posts are collected from the main query with the
 * the_posts filter; the header is sent on the 'wp' action (priority 1000),
 * which runs after the main query and the 404 decision and before any output
 * (and before redirect_canonical, so redirects are tagged too).
 * The filter 'scalepress_page_tags' may change the list.
 *
 * PURGES. Changes collected during a request are sent once, on 'shutdown'
 * (priority 0: before PHP finishes and before WordPress flushes its output
 * buffers, so an editor's next page view is already fresh; a second pass at
 * the very end sends what other shutdown callbacks queued, if anything), as
 * one POST to SCALEPRESS_PURGE_URL with
 *   Authorization: Bearer SCALEPRESS_PURGE_SECRET
 *   {"tags":["post-12","home",...,"overflow"],"soft":true}  or  {"all":true,"soft":true}
 * and a timeout of 2 s. The controller fans it out to every edge and answers
 * 2xx when all applied. If the call fails, the purge is kept in the
 * non-autoloaded option scalepress_purge_pending (tags merged, at most 500,
 * beyond that a purge of everything) and sent again at the end of a later
 * request, with a backoff of 5 s doubling up to 5 min. Without both constants
 * nothing is sent. Soft purges (the edge may serve the old page while it
 * fetches the new one) unless the filter 'scalepress_purge_soft' says false.
 *   post published, updated, unpublished, trashed or deleted (viewable types):
 *       post-<ID> home feed archive 404 author-<ID> term-<ID> (its terms and
 *       their ancestors). 404 because the page of a new URL may be cached as not found.
 *   attachment edited or deleted: post-<ID> and post-<parent>
 *   reusable blocks, templates, template parts, global styles, navigation: all
 *   approved comment posted, edited, deleted, or approved/unapproved:
 *       post-<post ID> feed feed-<post ID>
 *   term edited or deleted (viewable taxonomies): term-<ID>; nav menus: all
 *   author profile updated: author-<ID>; user deleted with posts reassigned: all
 *   sticky posts changed: home
 *   nav menu saved or deleted, theme switched, customizer saved, widgets,
 *   theme mods, plugin/theme/core updates, site options (title, tagline,
 *   permalinks, reading settings, date formats, active plugins...) updated
 *   or deleted: all
 * Other plugins may call scalepress_purge_tags( array ) and scalepress_purge_all().
 */

defined( 'ABSPATH' ) || exit;

// What PHP creates stays writable by the group it shares with the node's
// file sync agent, which must be able to replace it when another node
// changes it (docs/adr/0009-trust-model.md). WordPress's own writes use
// FS_CHMOD_FILE / FS_CHMOD_DIR; this covers plugins that write files
// themselves.
umask( 0002 );

/**
 * Page tags and purges. One instance per request.
 */
final class Scalepress_Edge {

	const HEADER           = 'X-Scalepress-Tags';
	const MAX_TAGS         = 200;
	const OVERFLOW         = 'overflow';
	const PENDING_OPTION   = 'scalepress_purge_pending';
	const MAX_PENDING_TAGS = 500;
	const TIMEOUT          = 2;

	/** Post types whose content shows up on any page. */
	const SITEWIDE_POST_TYPES = array( 'wp_block', 'wp_template', 'wp_template_part', 'wp_global_styles', 'wp_navigation' );

	/** Options whose change may alter every page. */
	const SITEWIDE_OPTIONS = array(
		'blogname', 'blogdescription', 'home', 'siteurl', 'blog_public', 'WPLANG',
		'permalink_structure', 'category_base', 'tag_base',
		'show_on_front', 'page_on_front', 'page_for_posts', 'posts_per_page', 'posts_per_rss', 'rss_use_excerpt',
		'date_format', 'time_format', 'start_of_week', 'timezone_string', 'gmt_offset',
		'active_plugins', 'template', 'stylesheet', 'sidebars_widgets', 'site_icon',
		'show_avatars', 'avatar_default', 'avatar_rating', 'thread_comments', 'thread_comments_depth',
		'page_comments', 'comments_per_page', 'default_comments_page', 'comment_order',
	);

	/** Prefixes of options whose change may alter every page. */
	const SITEWIDE_OPTION_PREFIXES = array( 'widget_', 'theme_mods_' );

	/** @var Scalepress_Edge|null */
	private static $instance = null;

	/** @var WP_Post[] Posts of the main query. */
	private $main_posts = array();

	/** @var string[] Tags to purge at shutdown. */
	private $purge = array();

	/** @var bool Purge everything at shutdown. */
	private $purge_everything = false;

	/** @var bool A purge call of this request failed: do not wait for another. */
	private $call_failed = false;

	/** @return Scalepress_Edge */
	public static function instance() {
		if ( null === self::$instance ) {
			self::$instance = new self();
		}
		return self::$instance;
	}

	/** Forgets the request's state (tests). */
	public static function reset() {
		self::$instance = null;
	}

	/** Registers the hooks. */
	public static function boot() {
		$s = self::instance();
		add_filter( 'the_posts', array( $s, 'collect_posts' ), 1000, 2 );
		add_action( 'wp', array( $s, 'send_tags' ), 1000 );
		if ( ! self::purge_configured() ) {
			return;
		}
		add_action( 'transition_post_status', array( $s, 'on_post_status' ), 10, 3 );
		add_action( 'before_delete_post', array( $s, 'on_delete_post' ), 10, 1 );
		add_action( 'edit_attachment', array( $s, 'on_attachment' ), 10, 1 );
		add_action( 'delete_attachment', array( $s, 'on_attachment' ), 10, 1 );
		add_action( 'comment_post', array( $s, 'on_comment_post' ), 10, 2 );
		// The REST API and wp_insert_comment() callers do not fire comment_post.
		add_action( 'wp_insert_comment', array( $s, 'on_comment_changed' ), 10, 1 );
		add_action( 'edit_comment', array( $s, 'on_comment_changed' ), 10, 1 );
		add_action( 'delete_comment', array( $s, 'on_comment_changed' ), 10, 1 );
		add_action( 'transition_comment_status', array( $s, 'on_comment_status' ), 10, 3 );
		add_action( 'edited_term', array( $s, 'on_term' ), 10, 3 );
		add_action( 'delete_term', array( $s, 'on_term' ), 10, 3 );
		add_action( 'profile_update', array( $s, 'on_profile' ), 10, 1 );
		add_action( 'delete_user', array( $s, 'on_delete_user' ), 10, 2 );
		add_action( 'updated_option', array( $s, 'on_option' ), 10, 1 );
		add_action( 'deleted_option', array( $s, 'on_option' ), 10, 1 );
		foreach ( array( 'wp_update_nav_menu', 'wp_delete_nav_menu', 'switch_theme', 'customize_save_after', 'upgrader_process_complete' ) as $hook ) {
			add_action( $hook, array( $s, 'purge_all' ), 10, 0 );
		}
		add_action( 'shutdown', array( $s, 'send_purges' ), 0, 0 );
		// Again at the very end, for purges queued by other shutdown callbacks;
		// sends nothing if there are none.
		add_action( 'shutdown', array( $s, 'send_purges' ), PHP_INT_MAX, 0 );
	}

	/** Both constants are defined and not empty. */
	public static function purge_configured() {
		return defined( 'SCALEPRESS_PURGE_URL' ) && defined( 'SCALEPRESS_PURGE_SECRET' )
			&& '' !== (string) SCALEPRESS_PURGE_URL && '' !== (string) SCALEPRESS_PURGE_SECRET;
	}

	/*
	 * Tags.
	 */

	/**
	 * The the_posts filter: remembers the posts of the main query.
	 *
	 * @param array    $posts The posts.
	 * @param WP_Query $query The query.
	 * @return array The posts, unchanged.
	 */
	public function collect_posts( $posts, $query = null ) {
		if ( is_array( $posts ) && is_object( $query ) && method_exists( $query, 'is_main_query' ) && $query->is_main_query() ) {
			$this->main_posts = $posts;
		}
		return $posts;
	}

	/** The 'wp' action: sends the tags header on anonymous cacheable pages. */
	public function send_tags() {
		if ( headers_sent() || ! $this->cacheable_request() ) {
			return;
		}
		$tags = $this->page_tags();
		if ( $tags ) {
			header( self::HEADER . ': ' . implode( ' ', $tags ) );
		}
	}

	/** Whether this request may be stored by the edge, so that it needs tags. */
	public function cacheable_request() {
		$method = isset( $_SERVER['REQUEST_METHOD'] ) ? strtoupper( (string) $_SERVER['REQUEST_METHOD'] ) : 'GET';
		if ( 'GET' !== $method && 'HEAD' !== $method ) {
			return false;
		}
		if ( is_admin() || wp_doing_ajax() || wp_doing_cron() || ( defined( 'REST_REQUEST' ) && REST_REQUEST ) ) {
			return false;
		}
		if ( is_user_logged_in() || is_preview() || is_search() || ( function_exists( 'is_customize_preview' ) && is_customize_preview() ) ) {
			return false;
		}
		return true;
	}

	/**
	 * The tags of the current page: deduplicated, at most MAX_TAGS.
	 *
	 * @return string[]
	 */
	public function page_tags() {
		$page = array(); // tags of the page itself, kept on overflow
		$item = array(); // tags of what it shows
		if ( is_404() ) {
			$page[] = '404';
		}
		if ( is_front_page() || is_home() ) {
			$page[] = 'home';
		}
		if ( is_feed() ) {
			$page[] = 'feed';
		}
		if ( is_date() || is_post_type_archive() ) {
			$page[] = 'archive';
		}
		$queried = get_queried_object();
		if ( $queried instanceof WP_Post ) {
			$page[] = 'post-' . $queried->ID;
			if ( is_feed() ) {
				$page[] = 'feed-' . $queried->ID;
			}
			$item = array_merge( $item, $this->post_display_tags( $queried ) );
		} elseif ( $queried instanceof WP_Term ) {
			$page[] = 'term-' . $queried->term_id;
		} elseif ( $queried instanceof WP_User ) {
			$page[] = 'author-' . $queried->ID;
		}
		foreach ( $this->main_posts as $post ) {
			if ( $post instanceof WP_Post ) {
				$item[] = 'post-' . $post->ID;
				$item   = array_merge( $item, $this->post_display_tags( $post ) );
			}
		}
		$tags = self::clean_tags( array_merge( $page, $item ) );
		if ( function_exists( 'apply_filters' ) ) {
			$tags = self::clean_tags( (array) apply_filters( 'scalepress_page_tags', $tags ) );
		}
		if ( count( $tags ) > self::MAX_TAGS ) {
			$tags = self::clean_tags( array_merge( array_slice( $page, 0, self::MAX_TAGS - 1 ), array( self::OVERFLOW ) ) );
		}
		return $tags;
	}

	/** author-<ID> and term-<ID> of what a post shows of itself. */
	private function post_display_tags( WP_Post $post ) {
		$tags = array();
		if ( ! empty( $post->post_author ) ) {
			$tags[] = 'author-' . $post->post_author;
		}
		foreach ( $this->post_terms( $post ) as $term ) {
			$tags[] = 'term-' . $term->term_id;
		}
		return $tags;
	}

	/** The terms of a post in viewable taxonomies. */
	private function post_terms( WP_Post $post ) {
		$terms = array();
		foreach ( get_object_taxonomies( $post->post_type ) as $taxonomy ) {
			if ( ! is_taxonomy_viewable( $taxonomy ) ) {
				continue;
			}
			$found = get_the_terms( $post, $taxonomy );
			if ( is_array( $found ) ) {
				foreach ( $found as $term ) {
					if ( $term instanceof WP_Term ) {
						$terms[] = $term;
					}
				}
			}
		}
		return $terms;
	}

	/**
	 * Keeps well-formed tags, once each, in order.
	 *
	 * @param array $tags Tags.
	 * @return string[]
	 */
	public static function clean_tags( array $tags ) {
		$out  = array();
		$seen = array();
		foreach ( $tags as $tag ) {
			if ( is_string( $tag ) && ! isset( $seen[ $tag ] ) && 1 === preg_match( '/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/D', $tag ) ) {
				$seen[ $tag ] = true;
				$out[]        = $tag; // not array_keys(): "404" would come back as an int
			}
		}
		return $out;
	}

	/*
	 * Purge collection.
	 */

	/**
	 * Purges tags at the end of this request.
	 *
	 * @param string[] $tags Tags.
	 */
	public function purge_tags( array $tags ) {
		$this->purge = self::clean_tags( array_merge( $this->purge, $tags ) );
	}

	/** Purges everything at the end of this request. */
	public function purge_all() {
		$this->purge_everything = true;
	}

	/**
	 * What this request will purge (tests).
	 *
	 * @return array [ 'all' => bool, 'tags' => string[] ]
	 */
	public function pending() {
		return array(
			'all'  => $this->purge_everything,
			'tags' => $this->purge,
		);
	}

	/** The tags of a post's pages and of the lists it appears in. */
	private function purge_post( WP_Post $post ) {
		if ( in_array( $post->post_type, self::SITEWIDE_POST_TYPES, true ) ) {
			$this->purge_all();
			return;
		}
		if ( ! is_post_type_viewable( $post->post_type ) ) {
			return;
		}
		$tags = array( 'post-' . $post->ID, 'home', 'feed', 'archive', '404' );
		if ( ! empty( $post->post_author ) ) {
			$tags[] = 'author-' . $post->post_author;
		}
		foreach ( $this->post_terms( $post ) as $term ) {
			$tags[] = 'term-' . $term->term_id;
			foreach ( get_ancestors( $term->term_id, $term->taxonomy, 'taxonomy' ) as $ancestor ) {
				$tags[] = 'term-' . $ancestor;
			}
		}
		$this->purge_tags( $tags );
	}

	/**
	 * transition_post_status: a post that is, or was, public.
	 *
	 * @param string  $new_status New status.
	 * @param string  $old_status Old status.
	 * @param WP_Post $post       The post.
	 */
	public function on_post_status( $new_status, $old_status, $post ) {
		if ( $post instanceof WP_Post && ( 'publish' === $new_status || 'publish' === $old_status ) ) {
			$this->purge_post( $post );
		}
	}

	/**
	 * before_delete_post: while its terms still exist.
	 *
	 * @param int $post_id Post ID.
	 */
	public function on_delete_post( $post_id ) {
		$post = get_post( $post_id );
		if ( $post instanceof WP_Post && 'publish' === $post->post_status ) {
			$this->purge_post( $post );
		}
	}

	/**
	 * edit_attachment, delete_attachment: the attachment page and its parent.
	 *
	 * @param int $post_id Attachment ID.
	 */
	public function on_attachment( $post_id ) {
		$post = get_post( $post_id );
		if ( ! $post instanceof WP_Post ) {
			return;
		}
		$tags = array( 'post-' . $post->ID );
		if ( ! empty( $post->post_parent ) ) {
			$tags[] = 'post-' . $post->post_parent;
		}
		$this->purge_tags( $tags );
	}

	private function purge_comment( $comment ) {
		$comment = get_comment( $comment );
		if ( $comment && ! empty( $comment->comment_post_ID ) ) {
			$id = (int) $comment->comment_post_ID;
			$this->purge_tags( array( 'post-' . $id, 'feed', 'feed-' . $id ) );
		}
	}

	/**
	 * comment_post: a new comment, if it shows.
	 *
	 * @param int        $comment_id Comment ID.
	 * @param int|string $approved   1 if approved.
	 */
	public function on_comment_post( $comment_id, $approved = 0 ) {
		if ( 1 === $approved || '1' === $approved ) {
			$this->purge_comment( $comment_id );
		}
	}

	/**
	 * edit_comment, delete_comment: a comment that shows.
	 *
	 * @param int $comment_id Comment ID.
	 */
	public function on_comment_changed( $comment_id ) {
		$comment = get_comment( $comment_id );
		if ( $comment && '1' === (string) $comment->comment_approved ) {
			$this->purge_comment( $comment );
		}
	}

	/**
	 * transition_comment_status: approved, or no longer.
	 *
	 * @param string     $new_status New status.
	 * @param string     $old_status Old status.
	 * @param WP_Comment $comment    The comment.
	 */
	public function on_comment_status( $new_status, $old_status, $comment ) {
		if ( 'approved' === $new_status || 'approved' === $old_status ) {
			$this->purge_comment( $comment );
		}
	}

	/**
	 * edited_term, delete_term.
	 *
	 * @param int|WP_Term $term     Term ID.
	 * @param int         $tt_id    Term taxonomy ID.
	 * @param string      $taxonomy Taxonomy.
	 */
	public function on_term( $term, $tt_id = 0, $taxonomy = '' ) {
		if ( 'nav_menu' === $taxonomy ) {
			$this->purge_all();
			return;
		}
		if ( taxonomy_exists( $taxonomy ) && ! is_taxonomy_viewable( $taxonomy ) ) {
			return;
		}
		$this->purge_tags( array( 'term-' . (int) ( $term instanceof WP_Term ? $term->term_id : $term ) ) );
	}

	/**
	 * profile_update: the author's name shows on pages.
	 *
	 * @param int $user_id User ID.
	 */
	public function on_profile( $user_id ) {
		$this->purge_tags( array( 'author-' . (int) $user_id ) );
	}

	/**
	 * delete_user: posts reassigned without post hooks change every list.
	 *
	 * @param int      $user_id  User ID.
	 * @param int|null $reassign User who gets the posts.
	 */
	public function on_delete_user( $user_id, $reassign = null ) {
		if ( null !== $reassign ) {
			$this->purge_all();
			return;
		}
		$this->purge_tags( array( 'author-' . (int) $user_id ) );
	}

	/**
	 * updated_option, deleted_option. Not added_option: WordPress adds
	 * widget_* and theme_mods_* with their defaults on a site's first page
	 * view, which changes nothing; a real first save comes with a hook that
	 * purges everything (sidebars_widgets, customize_save_after, switch_theme).
	 *
	 * @param string $option Option name.
	 */
	public function on_option( $option ) {
		$option = (string) $option;
		if ( 'sticky_posts' === $option ) {
			$this->purge_tags( array( 'home' ) );
			return;
		}
		if ( in_array( $option, self::SITEWIDE_OPTIONS, true ) ) {
			$this->purge_all();
			return;
		}
		foreach ( self::SITEWIDE_OPTION_PREFIXES as $prefix ) {
			if ( 0 === strpos( $option, $prefix ) ) {
				$this->purge_all();
				return;
			}
		}
	}

	/*
	 * Purge delivery.
	 */

	/**
	 * The shutdown action: sends this request's purge merged with any that
	 * failed before, once.
	 */
	public function send_purges() {
		if ( ! self::purge_configured() || wp_installing() ) {
			return;
		}
		$mine                   = $this->pending();
		$this->purge            = array();
		$this->purge_everything = false;
		$have                   = $mine['all'] || $mine['tags'];

		$old = get_option( self::PENDING_OPTION );
		$old = is_array( $old ) ? $old : null;
		if ( ! $have && ( null === $old || time() < (int) ( isset( $old['next'] ) ? $old['next'] : 0 ) ) ) {
			return;
		}

		$merged = self::merge( $old, $mine );
		if ( ! $merged['all'] && ! $merged['tags'] ) { // a stored purge with nothing in it
			delete_option( self::PENDING_OPTION );
			return;
		}
		$soft   = (bool) apply_filters( 'scalepress_purge_soft', true );
		$body   = $merged['all']
			? array( 'all' => true, 'soft' => $soft )
			: array( 'tags' => $merged['tags'], 'soft' => $soft );

		if ( ! $this->call_failed && $this->post_purge( $body ) ) {
			if ( null !== $old ) {
				delete_option( self::PENDING_OPTION );
			}
			return;
		}
		$this->call_failed  = true;
		$attempts           = ( null !== $old && isset( $old['attempts'] ) ? (int) $old['attempts'] : 0 ) + 1;
		$merged['attempts'] = $attempts;
		$merged['next']     = time() + min( 300, 5 * ( 1 << min( $attempts - 1, 6 ) ) );
		update_option( self::PENDING_OPTION, $merged, false );
	}

	/**
	 * Merges a stored pending purge with this request's. Tags keep their
	 * order, once each; beyond MAX_PENDING_TAGS the purge becomes "all".
	 * Tag purges always include "overflow" (pages with too many tags).
	 *
	 * @param array|null $old  Stored: all, tags.
	 * @param array      $mine This request's: all, tags.
	 * @return array all, tags
	 */
	public static function merge( $old, array $mine ) {
		$all  = ! empty( $mine['all'] ) || ( is_array( $old ) && ! empty( $old['all'] ) );
		$tags = array();
		if ( ! $all ) {
			$tags = self::clean_tags(
				array_merge(
					is_array( $old ) && isset( $old['tags'] ) ? (array) $old['tags'] : array(),
					$mine['tags']
				)
			);
			$tags = array_values( array_diff( $tags, array( self::OVERFLOW ) ) );
			if ( count( $tags ) > self::MAX_PENDING_TAGS ) {
				$all  = true;
				$tags = array();
			} elseif ( $tags ) {
				$tags[] = self::OVERFLOW;
			}
		}
		return array(
			'all'  => $all,
			'tags' => $tags,
		);
	}

	/** One POST to the controller; true if it acknowledged (2xx). */
	private function post_purge( array $body ) {
		// WordPress 6.1's HTTP library (Requests 1.x) raises E_DEPRECATED on
		// PHP 8.1+ when it is first loaded; with WP_DEBUG on, that would be
		// printed into a page because of this call. Not ours to fix: mute it
		// for the duration of the call.
		$reporting = error_reporting( error_reporting() & ~E_DEPRECATED );
		$response  = wp_remote_post(
			SCALEPRESS_PURGE_URL,
			array(
				'timeout'     => self::TIMEOUT,
				'redirection' => 0,
				'blocking'    => true,
				'user-agent'  => 'scalepress-mu-plugin',
				'headers'     => array(
					'Authorization' => 'Bearer ' . SCALEPRESS_PURGE_SECRET,
					'Content-Type'  => 'application/json',
				),
				'body'        => json_encode( $body, JSON_UNESCAPED_SLASHES ),
			)
		);
		error_reporting( $reporting );
		if ( is_wp_error( $response ) ) {
			return false;
		}
		$code = (int) wp_remote_retrieve_response_code( $response );
		return $code >= 200 && $code < 300;
	}
}

/**
 * Purges these tags from every edge at the end of this request.
 *
 * @param string[] $tags Tags such as post-12.
 */
function scalepress_purge_tags( array $tags ) {
	Scalepress_Edge::instance()->purge_tags( $tags );
}

/**
 * Purges every page from every edge at the end of this request.
 */
function scalepress_purge_all() {
	Scalepress_Edge::instance()->purge_all();
}

Scalepress_Edge::boot();

/*
 * Updates are scalepress releases (docs/adr/0023-releases.md): core files
 * are read-only to PHP, and `scalepress update core` rolls a new core out,
 * canary first, with rollback. WordPress's own background core update would
 * fail on every node (and mail about it), so it is off; Site Health's
 * background-update test, which counts exactly that as critical, is
 * replaced by one that says who updates core. Plugin and theme updates from
 * wp-admin stay WordPress's while installs from wp-admin are allowed.
 */
add_filter( 'auto_update_core', 'scalepress_no_core_auto_update' );
add_filter( 'site_status_tests', 'scalepress_site_status_tests' );

/** WordPress never updates core itself: scalepress releases do. */
function scalepress_no_core_auto_update() {
	return false;
}

/**
 * Replaces WordPress's background-update test with scalepress's.
 *
 * @param array $tests Site Health's tests, 'direct' and 'async'.
 * @return array
 */
function scalepress_site_status_tests( $tests ) {
	unset( $tests['async']['background_updates'], $tests['direct']['background_updates'] );
	$tests['direct']['scalepress_updates'] = array(
		'label' => 'Updates',
		'test'  => 'scalepress_test_updates',
	);
	return $tests;
}

/**
 * Site Health's result for updates: managed by scalepress.
 *
 * @return array
 */
function scalepress_test_updates() {
	return array(
		'label'       => 'WordPress updates are managed by scalepress',
		'status'      => 'good',
		'badge'       => array(
			'label' => 'Security',
			'color' => 'blue',
		),
		'description' => '<p>Core files are read-only on every node. New WordPress versions are rolled out by scalepress as releases: a canary node checks each one before any node serves it, and every release can be rolled back (<code>scalepress update core</code>, <code>scalepress release</code>, <code>scalepress rollback</code>).</p>',
		'actions'     => '',
		'test'        => 'scalepress_updates',
	);
}
