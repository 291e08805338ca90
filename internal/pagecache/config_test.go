package pagecache

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "max bytes", mod: func(c *Config) { c.MaxBytes = 0 }, want: "pagecache: config.max_bytes: must be positive, got 0"},
		{name: "object bigger than a quarter", mod: func(c *Config) { c.MaxBytes = 16 << 20 },
			want: "pagecache: config.max_object_bytes: must be at most a quarter of max_bytes (4194304), got 8388608"},
		{name: "default ttl at nonce tick", mod: func(c *Config) { c.DefaultTTL = 12 * time.Hour },
			want: "pagecache: config.default_ttl: must be far below WordPress's 12h nonce tick (minutes), got 12h0m0s"},
		{name: "negative swr", mod: func(c *Config) { c.StaleWhileRevalidate = -time.Second }, want: "pagecache: config.stale_while_revalidate: must not be negative, got -1s"},
		{name: "tag header", mod: func(c *Config) { c.TagHeader = "X Tags" }, want: `pagecache: config.tag_header: "X Tags" is not a valid header name`},
		{name: "no tag header", mod: func(c *Config) { c.TagHeader = "" }},
		{name: "ignore params star inside", mod: func(c *Config) { c.IgnoreParams = []string{"utm_*", "a*b"} },
			want: `pagecache: config.ignore_params[1]: "a*b" must be a name, or a prefix ending in a single "*"`},
		{name: "default ttl types", mod: func(c *Config) { c.DefaultTTLTypes = []string{"html"} },
			want: `pagecache: config.default_ttl_types[0]: "html" is not a media type like "text/html"`},
		{name: "soft purge grace", mod: func(c *Config) { c.SoftPurgeGrace = -time.Second }, want: "pagecache: config.soft_purge_grace: must not be negative (0: the next request waits for the refetch), got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			got := ""
			if err := cfg.Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
