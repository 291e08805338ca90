// Builds h2spec v2.2.1 (MIT), the HTTP/2 conformance client internal/edge's
// TestH2Spec runs: scripts/install-tools.sh runs `go build -mod=readonly
// -trimpath github.com/summerwind/h2spec/cmd/h2spec` here. h2spec has no
// go.mod of its own, so without this module its dependencies would resolve to
// whatever is newest on the day; this go.sum pins them. A module of its own,
// so the scalepress module never sees it.
module github.com/scalepress/scalepress/tools/h2spec

go 1.26.0

require github.com/summerwind/h2spec v2.2.1+incompatible

require (
	github.com/fatih/color v1.19.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/net v0.63.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
