package controller

import (
	"testing"

	"github.com/scalepress/scalepress/internal/config"
)

// TestCannotCarry: a new directory takes a site over from Nomad only when
// nothing of it lived in the old directory alone.
func TestCannotCarry(t *testing.T) {
	hosts := []config.DBHost{{ID: "db1", Addr: "10.0.0.11", Agent: "10.0.0.11:7480", Dir: "/srv/db"}}
	tests := []struct {
		name  string
		edit  func(c *config.Config)
		carry bool
	}{
		{"db members local", func(c *config.Config) {}, false},
		{"db on hosts, files off", func(c *config.Config) { c.DB.Hosts, c.Files.Enabled = hosts, false }, true},
		{"db on hosts, files on s3", func(c *config.Config) {
			c.DB.Hosts, c.Files.Enabled, c.Files.Store.Kind = hosts, true, "s3"
		}, true},
		{"db on hosts, files local", func(c *config.Config) {
			c.DB.Hosts, c.Files.Enabled, c.Files.Store.Kind = hosts, true, "local"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.edit(&c)
			if why := cannotCarry(c); (why == "") != tt.carry {
				t.Errorf("cannotCarry = %q, want carried %v", why, tt.carry)
			}
		})
	}
}
