<?php
/**
 * scalepress object cache: WordPress's object cache kept in redis (phpredis).
 *
 * Installed by scalepress as wp-content/object-cache.php; edits are overwritten.
 * Implements the object cache API of WordPress 6.1 and needs nothing of
 * WordPress itself (the few WordPress functions it may call are guarded).
 *
 * Layers: every request has an in-request (runtime) cache, WP_Object_Cache::$cache,
 * in front of redis. Reads go to the runtime cache first ($force skips it),
 * writes go to both. Non-persistent groups live in the runtime cache only.
 *
 * Keys in redis: {prefix}:{site generation}:{group}:{group generation}:{key}
 *   prefix     WP_CACHE_KEY_SALT, else "wp-" + a hash of DB_NAME, $table_prefix
 *              and DB_HOST, so two sites sharing a redis never meet.
 *   key        "{blog id}:{key}" for non-global groups on multisite, else {key}.
 * The generations live in one hash, {prefix}:gens (field "_site" and one field
 * "g:{group}" per flushed group), read once per request. wp_cache_flush()
 * increments "_site" and wp_cache_flush_group() increments the group's field:
 * the old keys become unreachable at once and redis evicts them (the redis of
 * scalepress runs maxmemory-policy allkeys-lru); nothing is SCANned or DELeted
 * and FLUSHDB is never used, so other sites on the same redis are untouched.
 * If the hash itself is evicted it is recreated with a random "_site" (48
 * bits), a new namespace: an eviction does not bring back values from before
 * a flush. A request keeps the generations it read at its
 * start; a flush by another request is seen from the next request on.
 *
 * Values: a payload signed with its redis key. The payload of an integer is
 * its decimal string; arrays and objects use igbinary when it is loaded
 * (WP_REDIS_IGBINARY = false to turn it off), everything else PHP
 * serialize(). The format is recognised on read, so nodes with and without
 * igbinary can share a redis.
 * In redis a value is MAC . payload, MAC = HMAC-SHA256 (32 bytes) under
 * SCALEPRESS_OBJECT_CACHE_KEY of the length of the redis key (4 bytes, big
 * endian), the redis key and the payload. A read checks the MAC (hash_equals)
 * before anything is unserialised; a value without a valid MAC (written by
 * anyone but this drop-in with this key: another client of redis, an older
 * drop-in, a value moved from another key) is a miss, counted in
 * get_stats()['rejected'], never unserialised, and deleted so that the next
 * add() can replace it. Without SCALEPRESS_OBJECT_CACHE_KEY redis is not used
 * at all. The MAC proves who wrote a value and for which key, not when: a
 * client of redis can still put back an older value of the same key, or
 * change the generations hash (unsigned) to flush the site or return it to an
 * older generation, whose values are signed too; never make it read a value
 * this drop-in did not write.
 * incr/decr read the value, check it, and write the new one only if redis
 * still holds what was read (a compare-and-set script; retried, and the key
 * deleted if it keeps changing): atomic, never below 0 like core; one round
 * trip when this request already holds the current value, two otherwise.
 * Expiration is in seconds; 0 (or less) means none. Unlike memcached, values
 * over 30 days are still seconds, never a Unix timestamp.
 *
 * Redis: WP_REDIS_HOST (a host, or a unix socket path), WP_REDIS_PORT,
 * WP_REDIS_PASSWORD (AUTH on every request, pipelined with the first
 * command), WP_REDIS_DATABASE (default 0), WP_REDIS_TIMEOUT (connect, default 0.5 s),
 * WP_REDIS_READ_TIMEOUT (default 0.5 s); one persistent connection per
 * php-fpm worker. When redis cannot be reached or fails mid-request, the rest
 * of the request runs on the runtime cache alone (no retries in that request,
 * never a fatal error) and a later request tries again: the next one, or the
 * first one WP_REDIS_RETRY_INTERVAL seconds (default 1; 0 = none) after the
 * last failed attempt on this machine. Writes that could not reach redis
 * (set, replace, delete, incr, decr, flush, flush_group) would leave redis
 * with values older than the database, so they are recorded in a small state
 * file in WP_REDIS_STATE_DIR (default the system temp dir), and the first
 * request that reaches redis again deletes those keys (or flushes the group
 * or the site; a site flush too when more than 1000 keys were lost). One log
 * line (error_log) when redis is lost and one when it is back.
 */

defined( 'ABSPATH' ) || exit;

/**
 * The object cache behind the wp_cache_* functions.
 */
#[AllowDynamicProperties]
class WP_Object_Cache {

	/** @var array Runtime cache: $cache[ $group ][ $key ] = value, as in core. */
	public $cache = array();

	/** @var int Reads answered (runtime cache or redis). */
	public $cache_hits = 0;

	/** @var int Reads not answered. */
	public $cache_misses = 0;

	/** @var array Group name => true for groups shared by all blogs. */
	public $global_groups = array();

	/** @var array Group name => true for groups never sent to redis. */
	public $non_persistent_groups = array();

	/** @var string "{blog id}:" on multisite, else "". */
	public $blog_prefix = '';

	/** @var bool */
	public $multisite = false;

	/** @var array Connection settings (see the constructor). */
	private $cfg;

	/** @var string Key prefix of this site. */
	private $prefix;

	/** @var Redis|null The connection, once it answered. */
	private $redis = null;

	/** @var bool Redis is not used for the rest of this request. */
	private $down = false;

	/** @var array|null Generations: "_site" and "g:{group}" => string. */
	private $gens = null;

	/** @var array Group => "{prefix}:{site gen}:{group}:{group gen}:". */
	private $group_prefixes = array();

	/** @var array Writes of this request that did not reach redis (see save_lost_writes()). */
	private $lost = array(
		'all'    => false,
		'groups' => array(),
		'keys'   => array(),
	);

	/** @var bool save_lost_writes() is registered. */
	private $lost_hooked = false;

	/** @var bool Use igbinary for arrays and objects. */
	private $igbinary;

	/** @var array Counters for stats() and tests. */
	private $counters = array(
		'runtime_hits'   => 0,
		'redis_hits'     => 0,
		'redis_calls'    => 0,
		'redis_errors'   => 0,
		'connects'       => 0,
		'backoff_skips'  => 0,
		'repair_flushes' => 0,
		'repair_deletes' => 0,
		'rejected'       => 0,
	);

	/** @var string The last redis error of this request. */
	private $last_error = '';

	/**
	 * Reads the connection settings from the WP_REDIS_* constants and the
	 * signing key from SCALEPRESS_OBJECT_CACHE_KEY; $options overrides them
	 * (used by tests): host, port, password, database, timeout, read_timeout,
	 * retry_interval, state_dir, prefix, persistent, igbinary, signing_key.
	 *
	 * @param array $options Overrides.
	 */
	public function __construct( array $options = array() ) {
		global $table_prefix;

		$this->cfg = $options + array(
			'host'           => defined( 'WP_REDIS_HOST' ) ? (string) WP_REDIS_HOST : '127.0.0.1',
			'port'           => defined( 'WP_REDIS_PORT' ) ? (int) WP_REDIS_PORT : 6379,
			'password'       => defined( 'WP_REDIS_PASSWORD' ) ? (string) WP_REDIS_PASSWORD : '',
			'database'       => defined( 'WP_REDIS_DATABASE' ) ? (int) WP_REDIS_DATABASE : 0,
			'timeout'        => defined( 'WP_REDIS_TIMEOUT' ) ? (float) WP_REDIS_TIMEOUT : 0.5,
			'read_timeout'   => defined( 'WP_REDIS_READ_TIMEOUT' ) ? (float) WP_REDIS_READ_TIMEOUT : 0.5,
			'retry_interval' => defined( 'WP_REDIS_RETRY_INTERVAL' ) ? (int) WP_REDIS_RETRY_INTERVAL : 1,
			'state_dir'      => defined( 'WP_REDIS_STATE_DIR' ) ? (string) WP_REDIS_STATE_DIR : sys_get_temp_dir(),
			'persistent'     => true,
			'igbinary'       => defined( 'WP_REDIS_IGBINARY' ) ? (bool) WP_REDIS_IGBINARY : true,
			'prefix'         => null,
			'signing_key'    => defined( 'SCALEPRESS_OBJECT_CACHE_KEY' ) ? (string) SCALEPRESS_OBJECT_CACHE_KEY : '',
		);
		if ( null === $this->cfg['prefix'] ) {
			if ( defined( 'WP_CACHE_KEY_SALT' ) && '' !== (string) WP_CACHE_KEY_SALT ) {
				$this->cfg['prefix'] = (string) WP_CACHE_KEY_SALT;
			} else {
				$this->cfg['prefix'] = 'wp-' . substr(
					md5(
						( defined( 'DB_NAME' ) ? DB_NAME : '' ) . "\0" .
						( isset( $table_prefix ) ? $table_prefix : '' ) . "\0" .
						( defined( 'DB_HOST' ) ? DB_HOST : '' )
					),
					0,
					12
				);
			}
		}
		$this->prefix   = $this->cfg['prefix'];
		$this->igbinary = $this->cfg['igbinary'] && function_exists( 'igbinary_serialize' );

		$this->multisite   = function_exists( 'is_multisite' ) && is_multisite();
		$blog_id           = function_exists( 'get_current_blog_id' ) ? get_current_blog_id() : 1;
		$this->blog_prefix = $this->multisite ? $blog_id . ':' : '';
	}

	/*
	 * The API.
	 */

	/**
	 * Adds data unless the key exists (SET NX).
	 *
	 * @return bool False if the key exists or the key is invalid.
	 */
	public function add( $key, $data, $group = 'default', $expire = 0 ) {
		if ( function_exists( 'wp_suspend_cache_addition' ) && wp_suspend_cache_addition() ) {
			return false;
		}
		if ( ! $this->is_valid_key( $key ) ) {
			return false;
		}
		$group = $this->group( $group );
		$id    = $this->id( $key, $group );
		if ( $this->in_runtime( $id, $group ) ) {
			return false;
		}
		if ( is_object( $data ) ) {
			$data = clone $data;
		}
		if ( $this->persistent( $group ) && $this->connect() ) {
			$value = $this->encode( $group, $id, $data );
			if ( null === $value ) {
				return false;
			}
			$ok = $this->call(
				function ( $r ) use ( $group, $id, $value, $expire ) {
					return $r->set( $this->rkey( $group, $id ), $value, $this->set_options( 'nx', $expire ) );
				}
			);
			if ( false === $ok ) {
				return false; // present in redis
			}
			// true: added; null: redis failed, and an add that did not happen
			// cannot leave redis stale, so the runtime cache just takes it.
		}
		$this->cache[ $group ][ $id ] = $data;
		return true;
	}

	/**
	 * Adds several values to one group.
	 *
	 * @return bool[] Key => whether it was added.
	 */
	public function add_multiple( array $data, $group = '', $expire = 0 ) {
		$group  = $this->group( $group );
		$result = array();
		$todo   = array();
		$suspended = function_exists( 'wp_suspend_cache_addition' ) && wp_suspend_cache_addition();
		foreach ( $data as $key => $value ) {
			if ( $suspended || ! $this->is_valid_key( $key ) ) {
				$result[ $key ] = false;
				continue;
			}
			$id = $this->id( $key, $group );
			if ( $this->in_runtime( $id, $group ) ) {
				$result[ $key ] = false;
				continue;
			}
			$result[ $key ] = true;
			$todo[ $key ]   = is_object( $value ) ? clone $value : $value;
		}
		if ( $todo && $this->persistent( $group ) && $this->connect() ) {
			$encoded = array();
			foreach ( $todo as $key => $value ) {
				$encoded[ $key ] = $this->encode( $group, $this->id( $key, $group ), $value );
				if ( null === $encoded[ $key ] ) { // cannot be stored, as in add()
					$result[ $key ] = false;
					unset( $todo[ $key ], $encoded[ $key ] );
				}
			}
			$replies = ! $encoded ? array() : $this->call(
				function ( $r ) use ( $group, $encoded, $expire ) {
					$p = $r->multi( Redis::PIPELINE );
					foreach ( $encoded as $key => $value ) {
						$p->set( $this->rkey( $group, $this->id( $key, $group ) ), $value, $this->set_options( 'nx', $expire ) );
					}
					return $p->exec();
				}
			);
			if ( is_array( $replies ) ) { // else redis failed: the runtime cache takes them
				$i = 0;
				foreach ( $encoded as $key => $value ) {
					if ( true !== $replies[ $i ] ) {
						$result[ $key ] = false;
						unset( $todo[ $key ] );
					}
					++$i;
				}
			}
		}
		foreach ( $todo as $key => $value ) {
			$this->cache[ $group ][ $this->id( $key, $group ) ] = $value;
		}
		return $result;
	}

	/**
	 * Replaces data only if the key exists (SET XX).
	 *
	 * @return bool False if the key does not exist.
	 */
	public function replace( $key, $data, $group = 'default', $expire = 0 ) {
		if ( ! $this->is_valid_key( $key ) ) {
			return false;
		}
		$group = $this->group( $group );
		$id    = $this->id( $key, $group );
		if ( is_object( $data ) ) {
			$data = clone $data;
		}
		if ( $this->persistent( $group ) && $this->connect() ) {
			$value = $this->encode( $group, $id, $data );
			if ( null === $value ) {
				return $this->delete_unencodable( $group, $id, $data );
			}
			$ok = $this->call(
				function ( $r ) use ( $group, $id, $value, $expire ) {
					return $r->set( $this->rkey( $group, $id ), $value, $this->set_options( 'xx', $expire ) );
				}
			);
			if ( true === $ok ) {
				$this->cache[ $group ][ $id ] = $data;
				return true;
			}
			if ( false === $ok ) {
				unset( $this->cache[ $group ][ $id ] ); // redis is the truth: it is gone
				return false;
			}
			// Redis failed: fall through to the runtime cache.
		}
		if ( ! $this->in_runtime( $id, $group ) ) {
			return false;
		}
		$this->note_lost_write( $group, array( $id ) );
		$this->cache[ $group ][ $id ] = $data;
		return true;
	}

	/**
	 * Stores data.
	 *
	 * @return bool False only for an invalid key.
	 */
	public function set( $key, $data, $group = 'default', $expire = 0 ) {
		if ( ! $this->is_valid_key( $key ) ) {
			return false;
		}
		$group = $this->group( $group );
		$id    = $this->id( $key, $group );
		if ( is_object( $data ) ) {
			$data = clone $data;
		}
		$this->cache[ $group ][ $id ] = $data;
		if ( ! $this->persistent( $group ) ) {
			return true;
		}
		if ( ! $this->connect() ) {
			$this->note_lost_write( $group, array( $id ) );
			return true;
		}
		$value = $this->encode( $group, $id, $data );
		if ( null === $value ) {
			return $this->delete_unencodable( $group, $id, $data );
		}
		$ok = $this->call(
			function ( $r ) use ( $group, $id, $value, $expire ) {
				$expire = (int) $expire;
				$k      = $this->rkey( $group, $id );
				return $expire > 0 ? $r->setex( $k, $expire, $value ) : $r->set( $k, $value );
			}
		);
		if ( true !== $ok ) {
			$this->note_lost_write( $group, array( $id ) );
		}
		return true;
	}

	/**
	 * Stores several values in one group, in one round trip.
	 *
	 * @return bool[] Key => whether it was set.
	 */
	public function set_multiple( array $data, $group = '', $expire = 0 ) {
		$group   = $this->group( $group );
		$result  = array();
		$todo    = array(); // id => value
		$persist = $this->persistent( $group );
		foreach ( $data as $key => $value ) {
			if ( ! $this->is_valid_key( $key ) ) {
				$result[ $key ] = false;
				continue;
			}
			if ( is_object( $value ) ) {
				$value = clone $value;
			}
			$id                           = $this->id( $key, $group );
			$this->cache[ $group ][ $id ] = $value;
			$result[ $key ]               = true;
			if ( $persist ) {
				$todo[ $id ] = $value;
			}
		}
		if ( ! $todo ) {
			return $result;
		}
		if ( ! $this->connect() ) {
			$this->note_lost_write( $group, array_keys( $todo ) );
			return $result;
		}
		$encoded = array();
		foreach ( $todo as $id => $value ) {
			$encoded[ $id ] = $this->encode( $group, $id, $value );
		}
		$replies = $this->call(
			function ( $r ) use ( $group, $encoded, $expire ) {
				$expire = (int) $expire;
				$p      = $r->multi( Redis::PIPELINE );
				foreach ( $encoded as $id => $value ) {
					$k = $this->rkey( $group, $id );
					if ( null === $value ) {
						$p->del( $k );
					} elseif ( $expire > 0 ) {
						$p->setex( $k, $expire, $value );
					} else {
						$p->set( $k, $value );
					}
				}
				return $p->exec();
			}
		);
		if ( ! is_array( $replies ) ) {
			$this->note_lost_write( $group, array_keys( $encoded ) );
		}
		return $result;
	}

	/**
	 * Reads a value.
	 *
	 * @param int|string $key   The key.
	 * @param string     $group The group.
	 * @param bool       $force Skip the runtime cache and ask redis.
	 * @param bool|null  $found Set to whether the key was found.
	 * @return mixed|false The value, or false.
	 */
	public function get( $key, $group = 'default', $force = false, &$found = null ) {
		$found = false;
		if ( ! $this->is_valid_key( $key ) ) {
			return false;
		}
		$group = $this->group( $group );
		$id    = $this->id( $key, $group );
		$ask   = $this->persistent( $group ) && ( $force || ! $this->in_runtime( $id, $group ) ) && $this->connect();
		if ( $ask ) {
			$raw = $this->call(
				function ( $r ) use ( $group, $id ) {
					return $r->get( $this->rkey( $group, $id ) );
				}
			);
			if ( null !== $raw ) { // null: redis failed, use the runtime cache
				list( $hit, $value, $rejected ) = $this->decode( $group, $id, $raw );
				if ( $rejected ) {
					$this->reject( $group, array( $id ) );
				}
				if ( ! $hit ) {
					unset( $this->cache[ $group ][ $id ] );
					++$this->cache_misses;
					return false;
				}
				++$this->counters['redis_hits'];
				$this->cache[ $group ][ $id ] = $value;
			}
		} elseif ( $this->in_runtime( $id, $group ) ) {
			++$this->counters['runtime_hits'];
		}
		if ( ! $this->in_runtime( $id, $group ) ) {
			++$this->cache_misses;
			return false;
		}
		$found = true;
		++$this->cache_hits;
		$value = $this->cache[ $group ][ $id ];
		return is_object( $value ) ? clone $value : $value;
	}

	/**
	 * Reads several keys of one group, asking redis once (MGET) for the
	 * keys the runtime cache does not hold.
	 *
	 * @return array Key => value, false for a miss.
	 */
	public function get_multiple( $keys, $group = 'default', $force = false ) {
		$group  = $this->group( $group );
		$result = array();
		$ask    = array(); // key => id
		foreach ( (array) $keys as $key ) {
			if ( ! $this->is_valid_key( $key ) ) {
				$result[ $key ] = false;
				continue;
			}
			$id             = $this->id( $key, $group );
			$result[ $key ] = null; // placeholder keeps the order
			if ( $force || ! $this->in_runtime( $id, $group ) ) {
				$ask[ $key ] = $id;
			}
		}
		if ( $ask && $this->persistent( $group ) && $this->connect() ) {
			$raws = $this->call(
				function ( $r ) use ( $group, $ask ) {
					$rkeys = array();
					foreach ( $ask as $id ) {
						$rkeys[] = $this->rkey( $group, $id );
					}
					return $r->mget( $rkeys );
				}
			);
			if ( is_array( $raws ) ) {
				$i        = 0;
				$rejected = array();
				foreach ( $ask as $key => $id ) {
					list( $hit, $value, $bad ) = $this->decode( $group, $id, isset( $raws[ $i ] ) ? $raws[ $i ] : false );
					++$i;
					if ( $bad ) {
						$rejected[] = $id;
					}
					if ( $hit ) {
						++$this->counters['redis_hits'];
						$this->cache[ $group ][ $id ] = $value;
					} else {
						unset( $this->cache[ $group ][ $id ] );
						$result[ $key ] = false;
						++$this->cache_misses;
					}
				}
				if ( $rejected ) {
					$this->reject( $group, $rejected );
				}
			}
		}
		foreach ( $result as $key => $placeholder ) {
			if ( false === $placeholder ) {
				continue;
			}
			$id = $this->id( $key, $group );
			if ( ! $this->in_runtime( $id, $group ) ) {
				$result[ $key ] = false;
				++$this->cache_misses;
				continue;
			}
			if ( ! isset( $ask[ $key ] ) ) {
				++$this->counters['runtime_hits'];
			}
			++$this->cache_hits;
			$value          = $this->cache[ $group ][ $id ];
			$result[ $key ] = is_object( $value ) ? clone $value : $value;
		}
		return $result;
	}

	/**
	 * Deletes a key.
	 *
	 * @return bool Whether something was deleted.
	 */
	public function delete( $key, $group = 'default', $deprecated = false ) {
		if ( ! $this->is_valid_key( $key ) ) {
			return false;
		}
		$group = $this->group( $group );
		$id    = $this->id( $key, $group );
		$had   = $this->in_runtime( $id, $group );
		unset( $this->cache[ $group ][ $id ] );
		if ( ! $this->persistent( $group ) ) {
			return $had;
		}
		if ( ! $this->connect() ) {
			$this->note_lost_write( $group, array( $id ) );
			return $had;
		}
		$n = $this->call(
			function ( $r ) use ( $group, $id ) {
				return $r->del( $this->rkey( $group, $id ) );
			}
		);
		if ( null === $n ) {
			$this->note_lost_write( $group, array( $id ) );
			return $had;
		}
		return $had || $n > 0;
	}

	/**
	 * Deletes several keys of one group, in one round trip.
	 *
	 * @return bool[] Key => whether it was deleted.
	 */
	public function delete_multiple( array $keys, $group = '' ) {
		$group  = $this->group( $group );
		$result = array();
		$ids    = array();
		foreach ( $keys as $key ) {
			if ( ! $this->is_valid_key( $key ) ) {
				$result[ $key ] = false;
				continue;
			}
			$id             = $this->id( $key, $group );
			$result[ $key ] = $this->in_runtime( $id, $group );
			$ids[ $key ]    = $id;
			unset( $this->cache[ $group ][ $id ] );
		}
		if ( ! $ids || ! $this->persistent( $group ) ) {
			return $result;
		}
		if ( ! $this->connect() ) {
			$this->note_lost_write( $group, array_values( $ids ) );
			return $result;
		}
		$replies = $this->call(
			function ( $r ) use ( $group, $ids ) {
				$p = $r->multi( Redis::PIPELINE );
				foreach ( $ids as $id ) {
					$p->del( $this->rkey( $group, $id ) );
				}
				return $p->exec();
			}
		);
		if ( ! is_array( $replies ) ) {
			$this->note_lost_write( $group, array_values( $ids ) );
			return $result;
		}
		$i = 0;
		foreach ( $ids as $key => $id ) {
			$result[ $key ] = $result[ $key ] || ( isset( $replies[ $i ] ) && $replies[ $i ] > 0 );
			++$i;
		}
		return $result;
	}

	/**
	 * Adds $offset to a numeric value; a value that is not numeric counts as 0.
	 * The result never goes below 0 (as in core). Runs in redis atomically.
	 *
	 * @return int|false The new value, false if the key does not exist.
	 */
	public function incr( $key, $offset = 1, $group = 'default' ) {
		return $this->add_to( $key, (int) $offset, $group );
	}

	/**
	 * Subtracts $offset; see incr().
	 *
	 * @return int|false The new value, false if the key does not exist.
	 */
	public function decr( $key, $offset = 1, $group = 'default' ) {
		return $this->add_to( $key, -(int) $offset, $group );
	}

	/**
	 * Removes every key of this site (only this prefix), by moving to a new
	 * site generation. Never FLUSHDB.
	 *
	 * @return bool False if redis could not be reached (the flush is then
	 *              done when it is back).
	 */
	public function flush() {
		$this->cache          = array();
		$this->group_prefixes = array();
		if ( ! $this->connect() ) {
			$this->note_lost_flush( '' );
			return false;
		}
		return $this->bump( '_site' );
	}

	/**
	 * Empties the runtime cache only.
	 *
	 * @return true
	 */
	public function flush_runtime() {
		$this->cache = array();
		return true;
	}

	/**
	 * Removes every key of a group (of all blogs), by moving the group to a
	 * new generation.
	 *
	 * @return bool False if redis could not be reached (the whole site is then
	 *              flushed when it is back).
	 */
	public function flush_group( $group ) {
		$group = $this->group( $group );
		unset( $this->cache[ $group ] );
		if ( ! $this->persistent( $group ) ) {
			return true;
		}
		if ( ! $this->connect() ) {
			$this->note_lost_flush( $group );
			return false;
		}
		return $this->bump( 'g:' . $group );
	}

	/**
	 * @param string|string[] $groups Groups shared by all blogs.
	 */
	public function add_global_groups( $groups ) {
		foreach ( (array) $groups as $group ) {
			$this->global_groups[ $group ] = true;
		}
	}

	/**
	 * @param string|string[] $groups Groups kept in the runtime cache only.
	 */
	public function add_non_persistent_groups( $groups ) {
		foreach ( (array) $groups as $group ) {
			$this->non_persistent_groups[ $group ] = true;
		}
	}

	/**
	 * Switches the prefix of non-global groups (multisite only, as in core).
	 *
	 * @param int $blog_id Blog ID.
	 */
	public function switch_to_blog( $blog_id ) {
		$this->blog_prefix = $this->multisite ? (int) $blog_id . ':' : '';
	}

	/**
	 * Deprecated since WordPress 3.5: drops the runtime cache of non-global groups.
	 */
	public function reset() {
		foreach ( array_keys( $this->cache ) as $group ) {
			if ( ! isset( $this->global_groups[ $group ] ) ) {
				unset( $this->cache[ $group ] );
			}
		}
	}

	/**
	 * Closes nothing: the connection is persistent (one per php-fpm worker).
	 *
	 * @return true
	 */
	public function close() {
		return true;
	}

	/**
	 * Echoes the statistics as HTML, like core's (debug bars call it).
	 */
	public function stats() {
		$s   = $this->get_stats();
		$esc = function ( $v ) {
			return function_exists( 'esc_html' ) ? esc_html( $v ) : htmlspecialchars( (string) $v, ENT_QUOTES );
		};
		echo '<p>';
		echo "<strong>Cache Hits:</strong> {$s['hits']}<br />";
		echo "<strong>Cache Misses:</strong> {$s['misses']}<br />";
		echo "<strong>Redis Calls:</strong> {$s['redis_calls']}<br />";
		echo '<strong>Redis:</strong> ' . $esc( $s['status'] . ( '' !== $s['last_error'] ? ' (' . $s['last_error'] . ')' : '' ) ) . '<br />';
		echo '<strong>Key Prefix:</strong> ' . $esc( $s['prefix'] );
		echo '</p>';
		echo '<ul>';
		foreach ( $this->cache as $group => $cache ) {
			try {
				$size = number_format( strlen( serialize( $cache ) ) / 1024, 2 ) . 'k';
			} catch ( Throwable $e ) { // a closure
				$size = '?';
			}
			echo '<li><strong>Group:</strong> ' . $esc( $group ) . ' - ( ' . $size . ' )</li>';
		}
		echo '</ul>';
	}

	/**
	 * Statistics of this request, for tests and tools.
	 *
	 * @return array hits, misses, runtime_hits, redis_hits, redis_calls,
	 *               redis_errors, connects, backoff_skips, repair_flushes,
	 *               repair_deletes, rejected (values in redis without a valid MAC),
	 *               status (connected, down, idle), last_error, prefix.
	 */
	public function get_stats() {
		$status = 'idle';
		if ( null !== $this->redis ) {
			$status = 'connected';
		} elseif ( $this->down ) {
			$status = 'down';
		}
		return array(
			'hits'       => $this->cache_hits,
			'misses'     => $this->cache_misses,
		) + $this->counters + array(
			'status'     => $status,
			'last_error' => $this->last_error,
			'prefix'     => $this->prefix,
		);
	}

	/**
	 * The redis key of a cache key, for tests and tools.
	 *
	 * @return string|false False while redis is not connected.
	 */
	public function redis_key( $key, $group = 'default' ) {
		$group = $this->group( $group );
		if ( ! $this->persistent( $group ) || ! $this->connect() ) {
			return false;
		}
		return $this->rkey( $group, $this->id( $key, $group ) );
	}

	/*
	 * Internals.
	 */

	/**
	 * Core's rule (6.1): an integer or a non-empty string.
	 */
	protected function is_valid_key( $key ) {
		if ( is_int( $key ) || ( is_string( $key ) && '' !== trim( $key ) ) ) {
			return true;
		}
		if ( function_exists( '_doing_it_wrong' ) ) {
			$message = is_string( $key )
				? 'Cache key must not be an empty string.'
				: sprintf( 'Cache key must be integer or non-empty string, %s given.', gettype( $key ) );
			$caller  = debug_backtrace( DEBUG_BACKTRACE_IGNORE_ARGS, 2 );
			_doing_it_wrong( __CLASS__ . '::' . ( isset( $caller[1]['function'] ) ? $caller[1]['function'] : 'unknown' ), $message, '6.1.0' );
		}
		return false;
	}

	private function group( $group ) {
		return empty( $group ) ? 'default' : (string) $group;
	}

	/** The key inside a group of the runtime cache (and the tail of the redis key). */
	private function id( $key, $group ) {
		if ( $this->multisite && ! isset( $this->global_groups[ $group ] ) ) {
			return $this->blog_prefix . $key;
		}
		return (string) $key;
	}

	private function persistent( $group ) {
		return ! isset( $this->non_persistent_groups[ $group ] );
	}

	private function in_runtime( $id, $group ) {
		return isset( $this->cache[ $group ] ) && ( isset( $this->cache[ $group ][ $id ] ) || array_key_exists( $id, $this->cache[ $group ] ) );
	}

	private function rkey( $group, $id ) {
		if ( ! isset( $this->group_prefixes[ $group ] ) ) {
			$gen                            = isset( $this->gens[ 'g:' . $group ] ) ? $this->gens[ 'g:' . $group ] : '0';
			$this->group_prefixes[ $group ] = $this->prefix . ':' . $this->gens['_site'] . ':' . rawurlencode( $group ) . ':' . $gen . ':';
		}
		return $this->group_prefixes[ $group ] . $id;
	}

	private function set_options( $mode, $expire ) {
		$expire = (int) $expire;
		return $expire > 0 ? array( $mode, 'ex' => $expire ) : array( $mode );
	}

	/** Length of the MAC in front of every value in redis. */
	const MAC_LEN = 32;

	/**
	 * The value as stored in redis under the key of $group and $id: the MAC,
	 * then the payload (see the top of this file). Needs connect().
	 *
	 * @return string|null Null for a value that cannot be serialized (a closure).
	 */
	private function encode( $group, $id, $value ) {
		$payload = $this->payload( $value );
		return null === $payload ? null : $this->sign( $this->rkey( $group, $id ), $payload );
	}

	/**
	 * Integers as decimal strings; arrays and objects with igbinary if
	 * enabled; everything else serialize(). Never empty.
	 *
	 * @return string|null Null for a value that cannot be serialized (a closure).
	 */
	private function payload( $value ) {
		if ( is_int( $value ) ) {
			return (string) $value;
		}
		try {
			if ( $this->igbinary && ( is_array( $value ) || is_object( $value ) ) ) {
				return igbinary_serialize( $value );
			}
			return serialize( $value );
		} catch ( Throwable $e ) {
			return null;
		}
	}

	private function mac( $rkey, $payload ) {
		return hash_hmac( 'sha256', pack( 'N', strlen( $rkey ) ) . $rkey . $payload, $this->cfg['signing_key'], true );
	}

	private function sign( $rkey, $payload ) {
		return $this->mac( $rkey, $payload ) . $payload;
	}

	/**
	 * The payload of a value this drop-in wrote under $rkey, or null for
	 * anything else. Nothing in $raw is interpreted before its MAC checks.
	 */
	private function verified( $rkey, $raw ) {
		if ( ! is_string( $raw ) || strlen( $raw ) <= self::MAC_LEN ) {
			return null;
		}
		$payload = (string) substr( $raw, self::MAC_LEN );
		return hash_equals( $this->mac( $rkey, $payload ), substr( $raw, 0, self::MAC_LEN ) ) ? $payload : null;
	}

	/**
	 * A value read from redis under the key of $group and $id.
	 *
	 * @param string|false $raw What redis returned (false: no such key).
	 * @return array [ found, value, rejected: present but not signed by us ]
	 */
	private function decode( $group, $id, $raw ) {
		if ( false === $raw ) {
			return array( false, null, false );
		}
		$payload = $this->verified( $this->rkey( $group, $id ), $raw );
		if ( null === $payload ) {
			return array( false, null, true );
		}
		list( $hit, $value ) = $this->unpack( $payload );
		return array( $hit, $value, false );
	}

	/**
	 * The value of a verified payload.
	 *
	 * @return array [ found, value ]
	 */
	private function unpack( $raw ) {
		if ( 0 === strncmp( $raw, "\x00\x00\x00\x02", 4 ) ) { // igbinary format 2
			if ( ! function_exists( 'igbinary_unserialize' ) ) {
				return array( false, null );
			}
			$value = @igbinary_unserialize( $raw ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
			return ( is_array( $value ) || is_object( $value ) ) ? array( true, $value ) : array( false, null );
		}
		if ( 1 === preg_match( '/^-?[0-9]+\z/', $raw ) ) {
			return array( true, (int) $raw );
		}
		if ( 'b:0;' === $raw ) {
			return array( true, false );
		}
		$value = @unserialize( $raw ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
		return false === $value ? array( false, null ) : array( true, $value );
	}

	/**
	 * A value redis cannot hold stays in the runtime cache; an older copy in
	 * redis must not outlive it.
	 */
	private function delete_unencodable( $group, $id, $data ) {
		$this->cache[ $group ][ $id ] = $data;
		$n                            = $this->call(
			function ( $r ) use ( $group, $id ) {
				return $r->del( $this->rkey( $group, $id ) );
			}
		);
		if ( null === $n ) {
			$this->note_lost_write( $group, array( $id ) );
		}
		return true;
	}

	/**
	 * Values in redis that this drop-in did not sign (see decode()): counted,
	 * and deleted so that an add() can put a real value there.
	 */
	private function reject( $group, array $ids ) {
		$this->counters['rejected'] += count( $ids );
		$this->call(
			function ( $r ) use ( $group, $ids ) {
				$keys = array();
				foreach ( $ids as $id ) {
					$keys[] = $this->rkey( $group, $id );
				}
				return $r->del( $keys );
			}
		);
	}

	private function add_to( $key, $offset, $group ) {
		if ( ! $this->is_valid_key( $key ) ) {
			return false;
		}
		$group = $this->group( $group );
		$id    = $this->id( $key, $group );
		if ( $this->persistent( $group ) && $this->connect() ) {
			$n = $this->add_in_redis( $group, $id, $offset );
			if ( is_int( $n ) ) {
				$this->cache[ $group ][ $id ] = $n;
				return $n;
			}
			if ( false === $n ) { // no such key in redis
				unset( $this->cache[ $group ][ $id ] );
				return false;
			}
			// Redis failed: fall through to the runtime cache.
		}
		if ( ! $this->in_runtime( $id, $group ) ) {
			return false;
		}
		$this->note_lost_write( $group, array( $id ) );
		$value                        = self::plus( $this->cache[ $group ][ $id ], $offset );
		$this->cache[ $group ][ $id ] = $value;
		return $value;
	}

	/** How many times incr/decr try when the value keeps changing under them. */
	const CAS_TRIES = 5;

	/**
	 * Adds $offset to the value in redis: reads it, checks its MAC, and writes
	 * the new value only if redis still holds what was read (LUA_CAS). The
	 * first try guesses the current value from the runtime cache.
	 *
	 * @return int|false|null The new value; false if the key is missing, not
	 *                        ours, or kept changing (then it is deleted);
	 *                        null if redis failed.
	 */
	private function add_in_redis( $group, $id, $offset ) {
		$rkey    = $this->rkey( $group, $id );
		$raw     = null; // what redis holds, once known
		$payload = null; // its verified payload
		if ( $this->in_runtime( $id, $group ) ) {
			$payload = $this->payload( $this->cache[ $group ][ $id ] );
			$raw     = null === $payload ? null : $this->sign( $rkey, $payload );
		}
		for ( $try = 0; $try < self::CAS_TRIES; $try++ ) {
			if ( null === $raw ) {
				$raw = $this->call(
					function ( $r ) use ( $rkey ) {
						return $r->get( $rkey );
					}
				);
				if ( null === $raw ) {
					return null;
				}
			}
			if ( false === $raw ) {
				return false;
			}
			if ( null === $payload ) { // read from redis: check it
				$payload = $this->verified( $rkey, $raw );
				if ( null === $payload ) {
					$this->reject( $group, array( $id ) );
					return false;
				}
			}
			list( $hit, $value ) = $this->unpack( $payload );
			$n                   = self::plus( $hit ? $value : 0, $offset );
			$new                 = $this->sign( $rkey, (string) $n );
			$reply               = $this->call(
				function ( $r ) use ( $rkey, $raw, $new ) {
					return $this->script( $r, self::LUA_CAS, array( $rkey, $raw, $new ), 1 );
				}
			);
			if ( null === $reply ) {
				return null;
			}
			if ( 1 === $reply ) {
				return $n;
			}
			$raw     = $reply; // it changed: what it is now (false: gone)
			$payload = null;
		}
		// It keeps changing: let it go rather than answer a count that may be stale.
		$this->call(
			function ( $r ) use ( $rkey ) {
				return $r->del( $rkey );
			}
		);
		return false;
	}

	/**
	 * $value + $offset as incr/decr count: a value that is not an integer is
	 * truncated if numeric, else 0; never below 0, never past PHP_INT_MAX.
	 */
	private static function plus( $value, $offset ) {
		if ( ! is_int( $value ) ) {
			$value = is_numeric( $value ) ? (int) $value : 0;
		}
		$n = $value + (int) $offset;
		if ( ! is_int( $n ) ) { // overflow made it a float
			$n = $n > 0 ? PHP_INT_MAX : 0;
		}
		return max( 0, $n );
	}

	/** Moves a generation forward and reloads the generations. */
	private function bump( $field ) {
		$ok = $this->call(
			function ( $r ) use ( $field ) {
				$this->load_gens( $this->script( $r, self::LUA_BUMP, array( $this->gens_key(), $field, $this->fresh_generation() ), 1 ) );
				return true;
			}
		);
		if ( true !== $ok ) {
			$this->note_lost_flush( '_site' === $field ? '' : substr( $field, 2 ) );
			return false;
		}
		return true;
	}

	private function gens_key() {
		return $this->prefix . ':gens';
	}

	/**
	 * The site generation of a new gens hash (redis lost it, or never had it):
	 * random, so that it is not one that was used before.
	 */
	private function fresh_generation() {
		return (string) random_int( 1, 1 << 48 );
	}

	private function load_gens( $flat ) {
		if ( ! is_array( $flat ) ) {
			throw new RedisException( 'cannot read the generations' );
		}
		$gens = array();
		for ( $i = 0; $i + 1 < count( $flat ); $i += 2 ) {
			$gens[ $flat[ $i ] ] = $flat[ $i + 1 ];
		}
		if ( ! isset( $gens['_site'] ) ) {
			throw new RedisException( 'generations hash has no _site' );
		}
		$this->gens           = $gens;
		$this->group_prefixes = array();
	}

	/**
	 * Runs a Lua script; an error reply (not a broken connection) is a
	 * RedisException too, so that it is handled like any failure.
	 */
	private function script( $r, $lua, array $args, $nkeys ) {
		$r->clearLastError();
		$out = $r->eval( $lua, $args, $nkeys );
		$err = $r->getLastError();
		if ( null !== $err ) {
			$r->clearLastError();
			throw new RedisException( $err );
		}
		return $out;
	}

	/**
	 * One redis round trip. A failure marks redis down for the rest of the
	 * request and returns null.
	 */
	private function call( callable $fn ) {
		++$this->counters['redis_calls'];
		try {
			return $fn( $this->redis );
		} catch ( Throwable $e ) {
			$this->mark_down( $e->getMessage() );
			return null;
		}
	}

	/**
	 * Makes sure redis is usable: connects once per request (the connection
	 * itself persists across requests) and reads the generations.
	 */
	private function connect() {
		if ( null !== $this->redis ) {
			return true;
		}
		if ( $this->down ) {
			return false;
		}
		if ( $this->in_backoff() ) {
			$this->down = true;
			++$this->counters['backoff_skips'];
			$this->last_error = 'backing off after a recent failure';
			return false;
		}
		++$this->counters['connects'];
		++$this->counters['redis_calls'];
		try {
			if ( ! class_exists( 'Redis' ) ) {
				throw new RuntimeException( 'the phpredis extension is not loaded' );
			}
			if ( strlen( $this->cfg['signing_key'] ) < 32 ) {
				throw new RuntimeException( 'SCALEPRESS_OBJECT_CACHE_KEY is not set (32 characters or more): values in redis could not be checked' );
			}
			$r    = new Redis();
			$host = $this->cfg['host'];
			$port = (int) $this->cfg['port'];
			if ( 0 === strpos( $host, 'unix://' ) ) {
				$host = substr( $host, 7 );
			}
			if ( '' !== $host && '/' === $host[0] ) {
				$port = 0;
			}
			$ok = $this->cfg['persistent']
				? $r->pconnect( $host, $port, $this->cfg['timeout'], 'scalepress-db' . (int) $this->cfg['database'], 0, $this->cfg['read_timeout'] )
				: $r->connect( $host, $port, $this->cfg['timeout'], null, 0, $this->cfg['read_timeout'] );
			if ( ! $ok ) {
				throw new RedisException( 'cannot connect' );
			}
			// AUTH on every request (a pooled persistent connection may be new)
			// and always SELECT, even database 0 (it may come from a request
			// that selected another one). Pipelined with the read of the
			// generations: one round trip.
			$auth = '' !== $this->cfg['password'];
			$p    = $r->multi( Redis::PIPELINE );
			if ( $auth ) {
				$p->auth( $this->cfg['password'] );
			}
			try {
				$replies = $p->select( (int) $this->cfg['database'] )
					->eval( self::LUA_GENS, array( $this->gens_key(), $this->fresh_generation() ), 1 )
					->exec();
			} catch ( RedisException $e ) {
				if ( preg_match( '/^(NOAUTH|WRONGPASS)/', $e->getMessage() ) ) {
					throw new RedisException( 'authentication failed (WP_REDIS_PASSWORD' . ( $auth ? '' : ' is not set' ) . '): ' . $e->getMessage() );
				}
				throw $e;
			}
			if ( ! is_array( $replies ) ) {
				throw new RedisException( 'no reply' );
			}
			if ( $auth && true !== array_shift( $replies ) ) {
				throw new RedisException( 'authentication failed (WP_REDIS_PASSWORD)' );
			}
			if ( true !== $replies[0] ) {
				throw new RedisException( 'cannot select database ' . (int) $this->cfg['database'] );
			}
			$this->load_gens( $replies[1] );
		} catch ( Throwable $e ) {
			$this->mark_down( $e->getMessage() );
			return false;
		}
		$this->redis = $r;
		$this->recover();
		return true;
	}

	/*
	 * Failure state, shared by the requests of this machine (and user) through
	 * a small JSON file:
	 *   down_at  when an attempt last failed (the backoff counts from it)
	 *   all      a flush was lost: flush the site when redis is back
	 *   groups   flush_group()s that were lost
	 *   keys     [group, key] pairs whose writes were lost: deleted when
	 *            redis is back (beyond MAX_LOST_KEYS: flush the site instead)
	 * The file is removed once redis is back and repaired.
	 */

	const MAX_LOST_KEYS = 1000;

	private function state_file() {
		$uid = function_exists( 'posix_geteuid' ) ? posix_geteuid() : getmyuid();
		return rtrim( $this->cfg['state_dir'], '/' ) . '/scalepress-object-cache-' . substr( md5( $this->prefix ), 0, 16 ) . '-' . $uid;
	}

	private static function decode_state( $raw ) {
		$state = is_string( $raw ) ? json_decode( $raw, true ) : null;
		$state = is_array( $state ) ? $state : array();
		return $state + array(
			'down_at' => 0,
			'all'     => false,
			'groups'  => array(),
			'keys'    => array(),
		);
	}

	/**
	 * Changes the state file under an exclusive lock; $change gets and
	 * returns the state. Does nothing if the file cannot be written.
	 */
	private function update_state( callable $change ) {
		$f = $this->state_file();
		for ( $try = 0; $try < 3; $try++ ) {
			$h = @fopen( $f, 'c+' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			if ( ! $h ) {
				return;
			}
			if ( ! flock( $h, LOCK_EX ) ) {
				fclose( $h );
				return;
			}
			// A recovering request may have removed the file while we waited.
			clearstatcache( true, $f );
			$st = @stat( $f ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
			if ( false === $st || fstat( $h )['ino'] !== $st['ino'] ) {
				flock( $h, LOCK_UN );
				fclose( $h );
				continue;
			}
			$state = $change( self::decode_state( stream_get_contents( $h ) ) );
			ftruncate( $h, 0 );
			rewind( $h );
			fwrite( $h, json_encode( $state ) ); // phpcs:ignore WordPress.WP.AlternativeFunctions
			fflush( $h );
			flock( $h, LOCK_UN );
			fclose( $h );
			return;
		}
	}

	private function in_backoff() {
		if ( $this->cfg['retry_interval'] <= 0 ) {
			return false;
		}
		$f = $this->state_file();
		clearstatcache( true, $f );
		if ( ! file_exists( $f ) ) {
			return false;
		}
		$state = self::decode_state( @file_get_contents( $f ) ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
		return time() - (int) $state['down_at'] < $this->cfg['retry_interval'];
	}

	private function mark_down( $reason ) {
		if ( null !== $this->redis ) {
			try {
				$this->redis->close();
			} catch ( Throwable $e ) { // phpcs:ignore Generic.CodeAnalysis.EmptyStatement
			}
		}
		$this->redis      = null;
		$this->down       = true;
		$this->last_error = (string) $reason;
		++$this->counters['redis_errors'];
		$first = false;
		$this->update_state(
			function ( $state ) use ( &$first ) {
				$first            = 0 === (int) $state['down_at'];
				$state['down_at'] = time();
				return $state;
			}
		);
		if ( $first ) {
			error_log( sprintf( 'scalepress object cache: redis %s:%s is unusable (%s); serving from the in-request cache until it is back', $this->cfg['host'], $this->cfg['port'], $reason ) );
		}
	}

	/** Writes of a persistent group did not reach redis: delete those keys when it is back. */
	private function note_lost_write( $group, array $ids ) {
		if ( ! $this->persistent( $group ) ) {
			return;
		}
		foreach ( $ids as $id ) {
			$this->lost['keys'][] = array( $group, (string) $id );
		}
		$this->lost_changed();
	}

	/** A flush ('' for the site) did not reach redis: do it when redis is back. */
	private function note_lost_flush( $group ) {
		if ( '' === $group ) {
			$this->lost['all'] = true;
		} elseif ( $this->persistent( $group ) ) {
			$this->lost['groups'][ $group ] = true;
		}
		$this->lost_changed();
	}

	private function lost_changed() {
		if ( count( $this->lost['keys'] ) > self::MAX_LOST_KEYS ) {
			$this->lost['all']  = true;
			$this->lost['keys'] = array();
		}
		if ( ! $this->lost_hooked ) {
			$this->lost_hooked = true;
			register_shutdown_function( array( $this, 'save_lost_writes' ) );
		}
	}

	/**
	 * Records this request's lost writes in the state file (at the end of the
	 * request: one file write however many there were).
	 */
	public function save_lost_writes() {
		$lost       = $this->lost;
		$this->lost = array(
			'all'    => false,
			'groups' => array(),
			'keys'   => array(),
		);
		if ( ! $lost['all'] && ! $lost['groups'] && ! $lost['keys'] ) {
			return;
		}
		$this->update_state(
			function ( $state ) use ( $lost ) {
				$state['all']    = $state['all'] || $lost['all'];
				$state['groups'] = array_merge( (array) $state['groups'], $lost['groups'] );
				$state['keys']   = array_merge( (array) $state['keys'], $lost['keys'] );
				if ( $state['all'] || count( $state['keys'] ) > self::MAX_LOST_KEYS ) {
					$state['all']    = true;
					$state['groups'] = array();
					$state['keys']   = array();
				}
				return $state;
			}
		);
	}

	/**
	 * After a successful connect: repair what was lost while redis was away
	 * (flush, flush_group, delete the keys) and forget the failure.
	 */
	private function recover() {
		$f = $this->state_file();
		clearstatcache( true, $f );
		if ( ! file_exists( $f ) ) {
			return;
		}
		$h = @fopen( $f, 'r+' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
		if ( ! $h ) {
			return;
		}
		if ( ! flock( $h, LOCK_EX | LOCK_NB ) ) { // another request is on it
			fclose( $h );
			return;
		}
		$state = self::decode_state( stream_get_contents( $h ) );
		$gone  = @unlink( $f ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
		flock( $h, LOCK_UN );
		fclose( $h );
		if ( ! $gone ) {
			return;
		}
		$done = $this->repair( $state );
		if ( false === $done ) {
			// Redis failed again: keep what is still to be repaired.
			$this->lost['all']    = $this->lost['all'] || $state['all'];
			$this->lost['groups'] = array_merge( $this->lost['groups'], (array) $state['groups'] );
			$this->lost['keys']   = array_merge( $this->lost['keys'], (array) $state['keys'] );
			$this->lost_changed();
			return;
		}
		error_log( sprintf( 'scalepress object cache: redis %s:%s is back%s', $this->cfg['host'], $this->cfg['port'], $done ) );
	}

	/**
	 * @return string|false What was done (for the log), false if redis failed.
	 */
	private function repair( array $state ) {
		if ( $state['all'] ) {
			++$this->counters['repair_flushes'];
			return $this->bump( '_site' ) ? '; flushed this site because a flush was lost while it was away' : false;
		}
		$groups = array_keys( (array) $state['groups'] );
		foreach ( $groups as $group ) {
			if ( ! $this->bump( 'g:' . $group ) ) {
				return false;
			}
		}
		$keys = array();
		foreach ( (array) $state['keys'] as $pair ) {
			if ( is_array( $pair ) && 2 === count( $pair ) && ! in_array( $pair[0], $groups, true ) ) {
				$keys[ $this->rkey( (string) $pair[0], (string) $pair[1] ) ] = true;
			}
		}
		if ( $keys ) {
			$n = $this->call(
				function ( $r ) use ( $keys ) {
					return $r->del( array_keys( $keys ) );
				}
			);
			if ( null === $n ) {
				return false;
			}
		}
		$this->counters['repair_deletes'] += count( $keys );
		if ( ! $groups && ! $keys ) {
			return '';
		}
		return sprintf( '; flushed %d group(s) and deleted %d key(s) whose writes were lost while it was away', count( $groups ), count( $keys ) );
	}

	/** KEYS[1] gens hash, ARGV[1] fresh site generation. Returns HGETALL. */
	const LUA_GENS = <<<'LUA'
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  if h[i] == '_site' then return h end
end
redis.call('HSETNX', KEYS[1], '_site', ARGV[1])
return redis.call('HGETALL', KEYS[1])
LUA;

	/** KEYS[1] gens hash, ARGV[1] field, ARGV[2] fresh site generation. Returns HGETALL. */
	const LUA_BUMP = <<<'LUA'
if redis.call('HSETNX', KEYS[1], '_site', ARGV[2]) == 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
return redis.call('HGETALL', KEYS[1])
LUA;

	/**
	 * KEYS[1] the key, ARGV[1] the value read, ARGV[2] the new value. Sets it
	 * (TTL kept) and returns 1 if the key still holds ARGV[1]; else returns
	 * what it holds (nil if missing).
	 */
	const LUA_CAS = <<<'LUA'
local v = redis.call('GET', KEYS[1])
if not v then return false end
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return v
LUA;
}

/*
 * The functions WordPress calls.
 */

/**
 * Sets up the object cache global.
 */
function wp_cache_init() {
	// phpcs:ignore WordPress.WP.GlobalVariablesOverride.Prohibited
	$GLOBALS['wp_object_cache'] = new WP_Object_Cache();
}

function wp_cache_add( $key, $data, $group = '', $expire = 0 ) {
	global $wp_object_cache;
	return $wp_object_cache->add( $key, $data, $group, (int) $expire );
}

function wp_cache_add_multiple( array $data, $group = '', $expire = 0 ) {
	global $wp_object_cache;
	return $wp_object_cache->add_multiple( $data, $group, (int) $expire );
}

function wp_cache_replace( $key, $data, $group = '', $expire = 0 ) {
	global $wp_object_cache;
	return $wp_object_cache->replace( $key, $data, $group, (int) $expire );
}

function wp_cache_set( $key, $data, $group = '', $expire = 0 ) {
	global $wp_object_cache;
	return $wp_object_cache->set( $key, $data, $group, (int) $expire );
}

function wp_cache_set_multiple( array $data, $group = '', $expire = 0 ) {
	global $wp_object_cache;
	return $wp_object_cache->set_multiple( $data, $group, (int) $expire );
}

function wp_cache_get( $key, $group = '', $force = false, &$found = null ) {
	global $wp_object_cache;
	return $wp_object_cache->get( $key, $group, $force, $found );
}

function wp_cache_get_multiple( $keys, $group = '', $force = false ) {
	global $wp_object_cache;
	return $wp_object_cache->get_multiple( $keys, $group, $force );
}

function wp_cache_delete( $key, $group = '' ) {
	global $wp_object_cache;
	return $wp_object_cache->delete( $key, $group );
}

function wp_cache_delete_multiple( array $keys, $group = '' ) {
	global $wp_object_cache;
	return $wp_object_cache->delete_multiple( $keys, $group );
}

function wp_cache_incr( $key, $offset = 1, $group = '' ) {
	global $wp_object_cache;
	return $wp_object_cache->incr( $key, $offset, $group );
}

function wp_cache_decr( $key, $offset = 1, $group = '' ) {
	global $wp_object_cache;
	return $wp_object_cache->decr( $key, $offset, $group );
}

function wp_cache_flush() {
	global $wp_object_cache;
	return $wp_object_cache->flush();
}

function wp_cache_flush_runtime() {
	global $wp_object_cache;
	return $wp_object_cache->flush_runtime();
}

function wp_cache_flush_group( $group ) {
	global $wp_object_cache;
	return $wp_object_cache->flush_group( $group );
}

/**
 * @param string $feature add_multiple, set_multiple, get_multiple,
 *                        delete_multiple, flush_runtime or flush_group.
 */
function wp_cache_supports( $feature ) {
	switch ( $feature ) {
		case 'add_multiple':
		case 'set_multiple':
		case 'get_multiple':
		case 'delete_multiple':
		case 'flush_runtime':
		case 'flush_group':
			return true;
	}
	return false;
}

function wp_cache_close() {
	global $wp_object_cache;
	return $wp_object_cache->close();
}

function wp_cache_add_global_groups( $groups ) {
	global $wp_object_cache;
	$wp_object_cache->add_global_groups( $groups );
}

function wp_cache_add_non_persistent_groups( $groups ) {
	global $wp_object_cache;
	$wp_object_cache->add_non_persistent_groups( $groups );
}

function wp_cache_switch_to_blog( $blog_id ) {
	global $wp_object_cache;
	$wp_object_cache->switch_to_blog( $blog_id );
}

/**
 * Deprecated since WordPress 3.5 (use wp_cache_switch_to_blog()).
 */
function wp_cache_reset() {
	if ( function_exists( '_deprecated_function' ) ) {
		_deprecated_function( __FUNCTION__, '3.5.0', 'wp_cache_switch_to_blog()' );
	}
	global $wp_object_cache;
	$wp_object_cache->reset();
}
