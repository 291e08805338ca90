package wordpress

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
)

// Config is what wp-config.php says.
type Config struct {
	DBName, DBUser, DBPassword string
	DBHost                     string // the router, IP:port
	SiteURL                    string // WP_HOME and WP_SITEURL
	Salts                      map[string]string
	RedisAddr                  string // for the object-cache drop-in (WP_REDIS_HOST/PORT)
	// RedisPassword (WP_REDIS_PASSWORD) and ObjectCacheKey
	// (SCALEPRESS_OBJECT_CACHE_KEY, the HMAC key the drop-in signs every
	// value with, at least 32 characters) go with RedisAddr.
	RedisPassword, ObjectCacheKey string
	// RedisSocket, instead of RedisAddr, is a unix socket path relative to
	// wp-config.php's directory (e.g. "../run/redis.sock"): WP_REDIS_HOST
	// is __DIR__ . "/" . RedisSocket, so one wp-config serves every node,
	// each with its own socket (a node's forwarder to a redis that a
	// scheduler may move).
	RedisSocket string
	Debug       bool
	// LockCode sets DISALLOW_FILE_MODS: no plugin, theme or core installs,
	// updates or edits from wp-admin (wordpress.lock_code).
	LockCode bool
	// BlockExternalHTTP sets WP_HTTP_BLOCK_EXTERNAL: WordPress makes no HTTP
	// request to other hosts (update checks, oEmbed, pingbacks).
	BlockExternalHTTP bool

	// CacheKeySalt prefixes every object-cache key (WP_CACHE_KEY_SALT), so
	// that sites sharing a redis never collide. Empty: the drop-in derives
	// one from the database name, table prefix and host.
	CacheKeySalt string
	// PurgeURL is the controller's purge endpoint (SCALEPRESS_PURGE_URL) and
	// PurgeSecret its bearer token (SCALEPRESS_PURGE_SECRET); the mu-plugin
	// purges nothing when they are empty. Both or neither.
	PurgeURL, PurgeSecret string
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.DBName == "":
		return fmt.Errorf("wp-config: db name is empty")
	case c.DBUser == "":
		return fmt.Errorf("wp-config: db user is empty")
	case c.DBHost == "":
		return fmt.Errorf("wp-config: db host is empty")
	}
	u, err := url.Parse(c.SiteURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wp-config: site url %q is not an http(s) URL", c.SiteURL)
	}
	for _, n := range SaltNames {
		if c.Salts[n] == "" {
			return fmt.Errorf("wp-config: salt %s is empty", n)
		}
	}
	if c.PurgeURL != "" {
		u, err := url.Parse(c.PurgeURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("wp-config: purge url %q is not an http(s) URL", c.PurgeURL)
		}
	}
	if c.RedisAddr != "" && c.RedisSocket != "" {
		return fmt.Errorf("wp-config: redis address and redis socket: set one")
	}
	if c.RedisSocket != "" && (strings.HasPrefix(c.RedisSocket, "/") || strings.ContainsAny(c.RedisSocket, "'\\\x00\n")) {
		return fmt.Errorf("wp-config: redis socket %q: want a plain path relative to wp-config.php", c.RedisSocket)
	}
	if c.RedisAddr != "" || c.RedisSocket != "" {
		if c.RedisPassword == "" {
			return fmt.Errorf("wp-config: redis password is empty (redis.addr is set)")
		}
		if len(c.ObjectCacheKey) < 32 {
			return fmt.Errorf("wp-config: object cache key must be at least 32 characters (the drop-in uses redis only with it)")
		}
	}
	if (c.PurgeURL == "") != (c.PurgeSecret == "") {
		return fmt.Errorf("wp-config: purge url and purge secret must be set together")
	}
	return nil
}

// phpString quotes s as a single-quoted PHP literal.
func phpString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// RenderConfig returns wp-config.php. HTTPS is taken from X-Forwarded-Proto
// only when the node agent marked the request as coming from a trusted edge
// (FastCGI param SCALEPRESS_VIA_EDGE), so a client cannot claim HTTPS itself.
func RenderConfig(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	def := func(name, value string) { fmt.Fprintf(&b, "define(%s, %s);\n", phpString(name), value) }
	str := func(name, value string) { def(name, phpString(value)) }
	boolean := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}

	b.WriteString("<?php\n// Written by scalepress on every `scalepress up`; edits here are overwritten.\n\n")
	str("DB_NAME", c.DBName)
	str("DB_USER", c.DBUser)
	str("DB_PASSWORD", c.DBPassword)
	str("DB_HOST", c.DBHost)
	str("DB_CHARSET", "utf8mb4")
	str("DB_COLLATE", "")
	b.WriteString("$table_prefix = 'wp_';\n\n")
	for _, n := range SaltNames {
		str(n, c.Salts[n])
	}
	b.WriteString("\n")
	str("WP_HOME", c.SiteURL)
	str("WP_SITEURL", c.SiteURL)
	b.WriteString(`
// HTTPS is believed from X-Forwarded-Proto only for requests the node agent
// received from a trusted edge.
if (!empty($_SERVER['SCALEPRESS_VIA_EDGE']) && isset($_SERVER['HTTP_X_FORWARDED_PROTO'])
    && strtolower($_SERVER['HTTP_X_FORWARDED_PROTO']) === 'https') {
    $_SERVER['HTTPS'] = 'on';
}

`)
	b.WriteString("// wp-cron runs from the controller, on exactly one node.\n")
	def("DISABLE_WP_CRON", "true")
	b.WriteString("// Core updates would make the nodes' trees differ.\n")
	def("AUTOMATIC_UPDATER_DISABLED", "true")
	b.WriteString("// PHP writes plugin and theme installs itself (never asks for FTP), and\n" +
		"// what it writes stays writable by the group the file sync shares with it.\n")
	str("FS_METHOD", "direct")
	def("FS_CHMOD_DIR", "02775")
	def("FS_CHMOD_FILE", "0664")
	if c.LockCode {
		b.WriteString("// wordpress.lock_code: code is deployed another way; wp-admin installs,\n" +
			"// updates and edits nothing.\n")
		def("DISALLOW_FILE_MODS", "true")
	}
	if c.BlockExternalHTTP {
		b.WriteString("// wordpress.block_external_http: no request leaves for other hosts.\n")
		def("WP_HTTP_BLOCK_EXTERNAL", "true")
	}
	def("WP_DEBUG", boolean(c.Debug))
	if c.RedisAddr != "" || c.RedisSocket != "" {
		b.WriteString("// The object cache (wp-content/object-cache.php): redis, its password, and\n" +
			"// the key that signs every value it writes.\n")
		if c.RedisSocket != "" {
			b.WriteString("// Redis through this node's socket (its host forwards it to redis).\n")
			def("WP_REDIS_HOST", "__DIR__ . "+phpString("/"+c.RedisSocket))
			def("WP_REDIS_PORT", "0")
		} else {
			host, port := c.RedisAddr, "6379"
			if i := strings.LastIndexByte(c.RedisAddr, ':'); i >= 0 {
				host, port = c.RedisAddr[:i], c.RedisAddr[i+1:]
			}
			str("WP_REDIS_HOST", host)
			def("WP_REDIS_PORT", port)
		}
		str("WP_REDIS_PASSWORD", c.RedisPassword)
		str("SCALEPRESS_OBJECT_CACHE_KEY", c.ObjectCacheKey)
	}
	if c.CacheKeySalt != "" {
		str("WP_CACHE_KEY_SALT", c.CacheKeySalt)
	}
	if c.PurgeURL != "" {
		b.WriteString("// The mu-plugin asks the controller to purge the edge caches.\n")
		str("SCALEPRESS_PURGE_URL", c.PurgeURL)
		str("SCALEPRESS_PURGE_SECRET", c.PurgeSecret)
	}
	b.WriteString("\nif (!defined('ABSPATH')) {\n    define('ABSPATH', __DIR__ . '/');\n}\nrequire_once ABSPATH . 'wp-settings.php';\n")
	return b.Bytes(), nil
}
