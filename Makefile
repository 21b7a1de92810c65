# rexray: `make run` serves volumes in a local Docker, `make test` proves it.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

# DRIVER picks the plugin make plugin builds: loopback (config.json), rbd
# (config.rbd.json, Ceph's client tools in the rootfs) or virtualbox
# (config.virtualbox.json).
DRIVER  ?= loopback
PLUGIN  ?= rexray/$(DRIVER):latest
# Each driver's plugin has its own folder, so building one never replaces
# another that a test is about to push.
PLUGIN_DIR ?= $(if $(filter loopback,$(DRIVER)),build/plugin,build/plugin-$(DRIVER))
PLUGIN_CONFIG = $(if $(filter loopback,$(DRIVER)),config.json,config.$(DRIVER).json)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: build install plugin unit integration-test fuzz test reliability setup run bench clean

build:
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -o bin/rexray .

# Host mode and Mesos: the binary, and dvdcli as a link to it.
PREFIX ?= /usr
install: build
	install -D -m 0755 bin/rexray $(DESTDIR)$(PREFIX)/bin/rexray
	ln -sf rexray $(DESTDIR)$(PREFIX)/bin/dvdcli

# $(PLUGIN_DIR) is what `docker plugin create` takes; with DOCKER_HOST set
# the plugin is created there as $(PLUGIN).
plugin: build
	@test -f $(PLUGIN_CONFIG) || { echo "no $(PLUGIN_CONFIG): DRIVER is loopback, rbd or virtualbox"; exit 1; }
	hack/plugin-rootfs.sh bin/rexray $(PLUGIN_DIR)/rootfs $(DRIVER)
	cp $(PLUGIN_CONFIG) $(PLUGIN_DIR)/config.json
	@if [ -n "$$DOCKER_HOST" ]; then \
		docker plugin rm -f $(PLUGIN) >/dev/null 2>&1 || true; \
		docker plugin create $(PLUGIN) $(PLUGIN_DIR); \
	fi

unit:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go test -count=1 ./...

# The suite on a real dockerd. FAULT_POINTS kills of the plugin (100) and
# SOAK_OPS soak operations (200) are the short form CI runs.
FAULT_POINTS ?= 100
SOAK_OPS     ?= 200
INTEGRATION_TIMEOUT ?= 25m
integration-test: plugin
	FAULT_POINTS=$(FAULT_POINTS) SOAK_OPS=$(SOAK_OPS) go test -tags integration -count=1 -v -timeout $(INTEGRATION_TIMEOUT) ./integration-tests/

# Every fuzz target: about 10 s each, or FUZZTIME each (10m in make
# reliability).
fuzz:
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

test: setup
	$(MAKE) unit
	$(MAKE) fuzz
	$(MAKE) integration-test

# The long form of the reliability suite: more kill points, a longer soak,
# ten minutes of fuzzing per target.
reliability: setup
	$(MAKE) fuzz FUZZTIME=10m
	$(MAKE) integration-test FAULT_POINTS=500 SOAK_OPS=1000 INTEGRATION_TIMEOUT=90m

setup:
	hack/setup.sh

run: setup build
	hack/run.sh $(PLUGIN)

# The benchmark: a table on stdout, the figures in $(BENCH_OUT). Needs root;
# a few minutes on 2 cores. PEER_SOCKET=/path/to/other.sock adds section 6.
BENCH_RUNS ?= 5
BENCH_DOCKER_RUNS ?= 30
BENCH_OUT  ?= build/bench.json
bench: setup plugin
	go run ./bench -binary bin/rexray -runs $(BENCH_RUNS) -docker-runs $(BENCH_DOCKER_RUNS) -out $(BENCH_OUT)

clean:
	rm -rf bin build
