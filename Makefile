# scalepress — the targets CI and the README use.
SHELL   := /bin/bash
GO      ?= go
BIN     := bin/scalepress
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/scalepress/scalepress/internal/cli.Version=$(VERSION)
DIR     ?= .scalepress

.PHONY: all deps tools build up down test unit e2e multihost bench lint fuzz clean

all: build

deps:
	bash scripts/install-deps.sh

# Nomad v1.6.3 and versitygw v1.8.0 for the multi-host tests, built from the Go
# module proxy into ~/.cache/scalepress/tools (cached; docs/multi-host.md
# "Tooling"). Not a prerequisite of `up`: one machine needs no Nomad.
tools:
	bash scripts/install-tools.sh

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/scalepress

# Brings the site up on the built-in defaults (http://127.0.0.1:8080), in the
# foreground; Ctrl-C stops it. `make up ARGS=--detach` returns once it is ready.
up: deps build
	./$(BIN) up --dir $(DIR) $(ARGS)

down: build
	./$(BIN) down --dir $(DIR)

# The README's test command: dependencies, build, tools, unit tests,
# end-to-end tests, multi-host tests.
test: deps build tools unit e2e multihost

unit:
	$(GO) test -race -short -count=1 ./internal/...

e2e: build
	SCALEPRESS_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 20m -v ./test/e2e/ 2>&1 | tee e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go:'; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || scripts/failsummary.sh e2e.log; exit $$rc

# Every package under test/ but test/e2e: the multi-host tier (Nomad,
# versitygw, hosts as network namespaces), which finds its tools through
# test/tools.
multihost: build tools
	pkgs=$$($(GO) list ./test/...) && pkgs=$$(grep -vx '.*/test/e2e' <<<"$$pkgs") || exit 1; \
	  SCALEPRESS_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 30m -v $$pkgs 2>&1 | tee multihost.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go:'; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || scripts/failsummary.sh multihost.log; exit $$rc

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

# deadcode (pinned: a version the module proxy serves) must report nothing
# that scripts/deadcode-keep.txt does not keep, with its reason.
DEADCODE := golang.org/x/tools/cmd/deadcode@v0.52.0
lint:
	@test -z "$$(gofmt -l cmd internal test)" || (gofmt -l cmd internal test; exit 1)
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; fi
	@dead="$$($(GO) run $(DEADCODE) ./cmd/scalepress)" || exit 1; \
	  new="$$(printf '%s\n' "$$dead" | sed -E 's/:[0-9]+:[0-9]+:/:/' | grep -vxF -f <(grep -v '^#' scripts/deadcode-keep.txt) | grep .)"; \
	  if [ -n "$$new" ]; then printf 'deadcode: unreachable, delete it or keep it in scripts/deadcode-keep.txt with a reason:\n%s\n' "$$new"; exit 1; fi

# Every parser's fuzz target, FUZZTIME each (go test -fuzz takes one target at a time).
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	internal/config:FuzzParse internal/node:FuzzResolve internal/fastcgi:FuzzReadRecords \
	internal/fastcgi:FuzzNameValuePairs internal/galera:FuzzParseGraState \
	internal/pagecache:FuzzCacheControl internal/pagecache:FuzzRange internal/pagecache:FuzzTags \
	internal/pagecache:FuzzPurgeRequest internal/pagecache:FuzzHTTPDate internal/pagecache:FuzzAge \
	internal/pagecache:FuzzCDNCacheControl internal/pagecache:FuzzAcceptEncoding \
	internal/hitfront:FuzzParseHead internal/hitfront:FuzzWriterFraming internal/geodns:FuzzServeDNS internal/filesync:FuzzChangeRecord \
	internal/filesync:FuzzPushChange internal/filesync:FuzzFirstServer internal/filesync:FuzzUnitMarker internal/sitepath:FuzzDenied internal/throttle:FuzzLoginBody \
	test/hosts:FuzzCheckSubnet internal/rolelog:FuzzParseTime internal/backup:FuzzParseManifest \
	internal/upstream:FuzzReadResponse internal/autoscale:FuzzParsePressure \
	internal/release:FuzzLoadZip internal/release:FuzzHeader internal/release:FuzzVersion internal/statedir:FuzzUnmarshalCarry
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "== $$pkg $$fn"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$pkg/; done

clean:
	rm -rf bin e2e.log multihost.log
