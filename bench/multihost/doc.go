// Package multihost is issue 12's Measure section as a benchmark: a site
// across four hosts made of network namespaces (test/hosts), measured side
// by side with lsyncd + rsync where a peer exists. It is a Go test so that
// it can use the test/hosts fixtures, but it is a benchmark: `make test`
// does not run bench/, `go vet ./...` builds it, and bench/multihost.sh runs
// it (as root; it takes the e2e lock itself).
package multihost
