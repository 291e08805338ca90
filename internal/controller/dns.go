package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/miekg/dns"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/local"
)

// startDNS starts the geo DNS server (the dns role) when dns is enabled and
// waits until it answers the zone's SOA over UDP. The edges are up by then,
// so its first health checks find them healthy.
func (c *Controller) startDNS(ctx context.Context) error {
	if !c.cfg.DNS.Enabled {
		return nil
	}
	gc := c.cfg.GeoDNS()
	if gc.GeoIPPath != "" {
		abs, err := filepath.Abs(gc.GeoIPPath)
		if err != nil {
			return fmt.Errorf("dns.geoip: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("dns.geoip: GeoIP database %s: %w (a relative path is read from the directory `scalepress up` runs in)", abs, errors.Unwrap(err))
		}
		gc.GeoIPPath = abs // the role runs elsewhere
	}
	if c.onNomad(config.RoleDNS) {
		return c.startDNSNomad(ctx, gc, gc.Addr, gc.Zone)
	}
	return c.start(ctx, &c.dns, c.unprivileged(local.Role{
		Name: "dns", Role: "dns", Spec: gc, StopTimeout: 10 * time.Second, // in-flight queries get 5 s
		Ready: dnsCheck(gc.Addr, gc.Zone), ReadyTimeout: 15 * time.Second,
	}, gc.Addr))
}

// dnsCheck asks addr over UDP for the SOA of zone and wants an
// authoritative answer.
func dnsCheck(addr, zone string) func(context.Context) error {
	return func(ctx context.Context) error {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
		cl := &dns.Client{Net: "udp", Timeout: time.Second}
		r, _, err := cl.ExchangeContext(ctx, q, addr)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
			return fmt.Errorf("SOA %s: %s, authoritative %v, %d answers", zone, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
		}
		return nil
	}
}

// dnsStatus is the status of the DNS server, nil when dns is off.
func (c *Controller) dnsStatus() *api.DNSStatus {
	if !c.cfg.DNS.Enabled {
		return nil
	}
	st := &api.DNSStatus{Addr: c.cfg.DNS.Addr, Zone: dns.Fqdn(c.cfg.DNS.Zone), State: "down", Regions: []api.DNSRegionStatus{}}
	st.PID = c.dns.pid()
	if c.dns.up() {
		st.State = "up"
	}
	if c.onNomad(config.RoleDNS) {
		st.Addr, st.Host = c.dnsOnNomad()
		if c.dns.healthy.Load() {
			st.State = "up"
		}
	}
	healthy := map[string]bool{}
	for i, e := range c.cfg.Edges {
		healthy[e.ID] = c.edgeUp(i)
	}
	for _, r := range c.cfg.GeoDNS().Regions {
		rs := api.DNSRegionStatus{Name: r.Name, Edges: []string{}}
		for _, e := range c.cfg.Edges {
			if e.Region == r.Name {
				rs.Edges = append(rs.Edges, e.ID)
				rs.Healthy = rs.Healthy || healthy[e.ID]
			}
		}
		st.Regions = append(st.Regions, rs)
	}
	return st
}
