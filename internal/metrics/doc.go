// Package metrics is what every role shares to expose Prometheus metrics
// with github.com/prometheus/client_golang: a registry per role (never the
// library's global default, so roles in one test process stay apart) with the
// Go and process collectors, the handler that serves it, bucket layouts
// chosen for what they measure, and the reading of docs/metrics.md that
// tests check the registries against. docs/adr/0019-metrics.md says why.
package metrics
