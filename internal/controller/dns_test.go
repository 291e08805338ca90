package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/geodns"
)

// TestDNSCheck runs the server the dns role runs, from the configuration the
// controller hands it, and asks it what startDNS asks.
func TestDNSCheck(t *testing.T) {
	cfg, err := config.Parse("cfg.yaml", []byte("edges:\n  - {addr: 127.0.0.11:8080, region: eu}\ndns:\n  enabled: true\n  addr: 127.0.0.1:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	gc := cfg.GeoDNS()
	gc.Regions[0].Edges[0].HealthAddr = "" // nothing listens there
	srv, err := geodns.New(gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	if err := dnsCheck(srv.Addr(), cfg.DNS.Zone)(cctx); err != nil {
		t.Errorf("check of the zone: %v", err)
	}
	if err := dnsCheck(srv.Addr(), "example.org.")(cctx); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Errorf("check of another zone: %v, want REFUSED", err)
	}
}
