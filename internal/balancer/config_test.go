package balancer

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		field  string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"slow start off", func(c *Config) { c.SlowStart = 0 }, ""},
		{"queue signal off", func(c *Config) { c.SaturationQueue = 0 }, ""},
		{"no retries", func(c *Config) { c.Retry.Max = 0 }, ""},
		{"interval", func(c *Config) { c.HealthInterval = 0 }, "HealthInterval"},
		{"timeout above interval", func(c *Config) { c.HealthTimeout = 3 * time.Second }, "HealthTimeout"},
		{"timeout zero", func(c *Config) { c.HealthTimeout = 0 }, "HealthTimeout"},
		{"rise", func(c *Config) { c.Rise = 0 }, "Rise"},
		{"fall", func(c *Config) { c.Fall = 0 }, "Fall"},
		{"error threshold", func(c *Config) { c.ErrorThreshold = 0 }, "ErrorThreshold"},
		{"saturation ejection off", func(c *Config) { c.SaturationThreshold = 0 }, ""},
		{"saturation threshold", func(c *Config) { c.SaturationThreshold = -1 }, "SaturationThreshold"},
		{"saturation queue", func(c *Config) { c.SaturationQueue = -1 }, "SaturationQueue"},
		{"eject base", func(c *Config) { c.EjectBase = 0 }, "EjectBase"},
		{"eject max below base", func(c *Config) { c.EjectMax = time.Second }, "EjectMax"},
		{"eject window", func(c *Config) { c.EjectWindow = -1 }, "EjectWindow"},
		{"saturation ejection", func(c *Config) { c.SaturationEjection = 0 }, "SaturationEjection"},
		{"max ejected percent zero", func(c *Config) { c.MaxEjectedPercent = 0 }, "MaxEjectedPercent"},
		{"max ejected percent above 100", func(c *Config) { c.MaxEjectedPercent = 101 }, "MaxEjectedPercent"},
		{"slow start", func(c *Config) { c.SlowStart = -time.Second }, "SlowStart"},
		{"deregistration delay", func(c *Config) { c.DeregistrationDelay = -time.Second }, "DeregistrationDelay"},
		{"retries", func(c *Config) { c.Retry.Max = -1 }, "Retry.Max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.field != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error naming %s", tt.field)
			case tt.field != "" && !strings.Contains(err.Error(), "balancer: config: "+tt.field+": "):
				t.Fatalf("Validate() = %q, want it to name %s", err, tt.field)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rise = 0
	if _, err := New(cfg, nil, nil); err == nil {
		t.Fatal("New accepted Rise 0")
	}
}
