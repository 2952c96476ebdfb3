# flightrec: build, run, test and benchmark.
#
# `make run` installs what is missing and runs flightrec on this node;
# `make test` installs what is missing and runs every test. Privileged steps
# use sudo when not run as root; sudo resets PATH, so Go's is passed along.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Runs a test binary as root, keeping PATH (for go, gcc) and the CI switch.
ROOT_EXEC := $(if $(SUDO),-exec "sudo env PATH=$(PATH) FLIGHTREC_REQUIRE_BPF=$(FLIGHTREC_REQUIRE_BPF)",)

# Debian packages: clang/llvm/libbpf-dev regenerate BPF objects; gcc/g++
# build the ground-truth workloads; golang-1.19-go lets the pclntab tests
# cover the Go 1.18/1.19 table format; prometheus and prometheus-alertmanager
# are the real peers of the trigger tests; chromium runs the web UI's browser
# tests. Node.js (20.19 or later, with npm) builds the UI: Debian's nodejs
# is installed only where no node is on PATH, so that a newer Node (from
# NodeSource, or a copy) is never replaced by Debian 12's older one.
APT_PACKAGES := clang llvm libbpf-dev gcc g++ make git curl ca-certificates util-linux golang-1.19-go \
	prometheus prometheus-alertmanager chromium

BIN := bin
AGENT := $(BIN)/flightrec-agent
SERVER := $(BIN)/flightrec

.PHONY: all deps build run test test-unit generate check-generate vet bench-agent clean ui ui-deps check-ui test-ui bench-ui

all: build

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done; \
		command -v node >/dev/null || echo nodejs npm); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(GO) mod download

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(AGENT) ./cmd/flightrec-agent
	$(GO) build -o $(SERVER) ./cmd/flightrec

# The server on its embedded store (./data) and the agent on this node
# shipping to it, until Ctrl-C.
run: deps build
	@mkdir -p data
	@echo
	@echo "flightrec server: http://127.0.0.1:7070 (data in ./data); the agent ships this node's profiles every 10 s."
	@echo "Query it (after ~10 s), e.g.:"
	@echo "  $(SERVER) top 'cpu{}' --from -5m"
	@echo "  $(SERVER) labels service"
	@echo "  go tool pprof -http : 'http://127.0.0.1:7070/api/v1/pprof?query=cpu{}&from=-15m'"
	@echo
	@BIN=$(BIN) ./deploy/local/run.sh

generate:
	$(GO) generate ./bpf/...

# The web UI (ui/): npm ci when package-lock.json is newer than the
# installed tree, then Vite builds ui/dist, which is committed and embedded.
UI_STAMP := ui/node_modules/.package-lock.json
$(UI_STAMP): ui/package-lock.json ui/package.json
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); if (a < 20 || (a == 20 && b < 19)) { console.error("ui: Vite needs Node 20.19 or later, this is " + process.version); process.exit(1); }'
	cd ui && npm ci --no-audit --no-fund
	@touch $@

ui-deps: $(UI_STAMP)

ui: ui-deps
	cd ui && npx vite build

# CI: the committed UI build must be exactly what the sources build to.
check-ui: ui
	@git diff --exit-code --stat -- ui/dist && test -z "$$(git status --porcelain --untracked-files=all -- ui/dist)" || \
		{ git status --short -- ui/dist; echo "ui/dist: the build is stale; run make ui and commit"; exit 1; }

test-ui: ui-deps
	cd ui && npx vitest run

# The flamegraph's speed in chromium: 50,000 nodes, first render and zoom,
# and the bundle's gzipped size; prints the table for the README.
bench-ui: ui
	node ui/test/browser/bench.mjs

# CI: the committed BPF objects must be exactly what the sources compile to.
check-generate: generate
	@git diff --exit-code --stat -- bpf/ || { echo "bpf/: generated files are stale; run make generate and commit"; exit 1; }

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: deps check-generate check-ui vet test-ui
	$(GO) test $(ROOT_EXEC) -count=1 -timeout 20m ./...

test-unit:
	$(GO) test -short ./...

bench-agent: deps build
	$(GO) build -o $(BIN)/bench-agent ./bench/agent
	$(SUDO) $(BIN)/bench-agent -agent $(AGENT)

clean:
	rm -rf $(BIN) cpu.pb.gz data

# The server under the issue's fleet load: 1,000 nodes, one hour of data,
# queries; prints the table for the README (bench/server).
.PHONY: bench-server
bench-server: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/flightrec ./cmd/flightrec
	$(GO) build -o $(BIN)/bench-server ./bench/server
	$(BIN)/bench-server -flightrec $(BIN)/flightrec

# The flight recorder's costs: agent CPU with off-CPU tracing at 2k and 20k
# context switches/s, ring memory against its bound, trigger → stored
# snapshot latency; prints the table (bench/recorder). Needs root.
.PHONY: bench-recorder
bench-recorder: deps build
	$(SUDO) env PATH=$(PATH) $(GO) run ./bench/recorder

# The canary diff's speed: one hour of 100 baseline and 100 canary instances
# over 20k functions on the embedded store, timed through the API; prints
# the median of 5 runs and PASS/FAIL against 1 s (bench/diff).
.PHONY: bench-diff
bench-diff: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/bench-diff ./bench/diff
	$(BIN)/bench-diff
