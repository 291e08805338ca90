package api

import "testing"

// TestUserContract pins the names users and their scripts rely on
// (docs/contract.md): changing one of these constants breaks them.
func TestUserContract(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"X-Cache header", HeaderCache, "X-Cache"},
		{"status", APIPathStatus, "/v1/status"},
		{"events", APIPathEvents, "/v1/events"},
		{"scale", APIPathScale, "/v1/scale"},
		{"purge", APIPathPurge, "/v1/purge"},
		{"metrics", APIPathMetrics, "/metrics"},
		{"targets", APIPathTargets, "/v1/targets"},
		{"edge purge", EdgePathPurge, "/_scalepress/purge"},
		{"edge health", EdgePathHealth, "/_scalepress/edge/health"},
		{"dashboard", DashboardPath, "/"}, // dashboard_url is the API URL with this path
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %q; docs/contract.md promises %q", tt.name, tt.got, tt.want)
			}
		})
	}
}
