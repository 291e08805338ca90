package nomadlaunch

import (
	"testing"

	nomad "github.com/hashicorp/nomad/api"
)

func TestMayRun(t *testing.T) {
	ready := func(mod func(s *nomad.NodeListStub)) *nomad.NodeListStub {
		s := &nomad.NodeListStub{Name: "h2", Datacenter: "eu-1", Status: nomad.NodeStatusReady, SchedulingEligibility: nomad.NodeSchedulingEligible,
			NodePool: "default", Drivers: map[string]*nomad.DriverInfo{"raw_exec": {Detected: true, Healthy: true}}}
		if mod != nil {
			mod(s)
		}
		return s
	}
	for _, tt := range []struct {
		name string
		dcs  []string
		stub *nomad.NodeListStub
		want bool
	}{
		{"ready", []string{"*"}, ready(nil), true},
		{"its datacenter", []string{"us-1", "eu-1"}, ready(nil), true},
		{"a datacenter glob", []string{"eu-*"}, ready(nil), true},
		{"another datacenter", []string{"us-*"}, ready(nil), false},
		{"down", []string{"*"}, ready(func(s *nomad.NodeListStub) { s.Status = nomad.NodeStatusDown }), false},
		{"initializing", []string{"*"}, ready(func(s *nomad.NodeListStub) { s.Status = nomad.NodeStatusInit }), false},
		{"ineligible", []string{"*"}, ready(func(s *nomad.NodeListStub) { s.SchedulingEligibility = nomad.NodeSchedulingIneligible }), false},
		{"draining", []string{"*"}, ready(func(s *nomad.NodeListStub) { s.Drain = true }), false},
		{"another node pool", []string{"*"}, ready(func(s *nomad.NodeListStub) { s.NodePool = "db" }), false},
		{"no raw_exec", []string{"*"}, ready(func(s *nomad.NodeListStub) { delete(s.Drivers, "raw_exec") }), false},
		{"raw_exec unhealthy", []string{"*"}, ready(func(s *nomad.NodeListStub) { s.Drivers["raw_exec"].Healthy = false }), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &Launcher{cfg: Config{Datacenters: tt.dcs}}
			if got := l.mayRun(tt.stub); got != tt.want {
				t.Errorf("mayRun = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetaMatches(t *testing.T) {
	for _, tt := range []struct {
		name       string
		meta, want map[string]string
		ok         bool
	}{
		{"no constraint", map[string]string{"a": "1"}, nil, true},
		{"matches", map[string]string{"scalepress_region": "eu", "x": "y"}, map[string]string{"scalepress_region": "eu"}, true},
		{"another value", map[string]string{"scalepress_region": "us"}, map[string]string{"scalepress_region": "eu"}, false},
		{"missing", nil, map[string]string{"scalepress_region": "eu"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := metaMatches(tt.meta, tt.want); got != tt.ok {
				t.Errorf("metaMatches = %v, want %v", got, tt.ok)
			}
		})
	}
}
