# rexray: `make run` serves volumes in a local Docker, `make test` proves it.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

# DRIVER picks the plugin make plugin builds: loopback (config.json), rbd
# (config.rbd.json, Ceph's client tools in the rootfs) or virtualbox
# (config.virtualbox.json).
DRIVER  ?= loopback
PLUGIN  ?= rexray/$(DRIVER):latest
# ARCH: the architecture built for (amd64 or arm64), the host's by default;
# another's binary goes to bin/linux-ARCH/rexray, its plugin's folder ends
# in -ARCH, and its rootfs holds Debian's ARCH packages (hack/arch-tree.sh).
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null || go env GOARCH)
ARCH ?= $(HOST_ARCH)
BIN  := $(if $(filter $(HOST_ARCH),$(ARCH)),bin/rexray,bin/linux-$(ARCH)/rexray)
ARCH_SUFFIX := $(if $(filter $(HOST_ARCH),$(ARCH)),,-$(ARCH))
# Each driver's plugin has its own folder, so building one never replaces
# another that a test is about to push.
PLUGIN_DIR ?= $(if $(filter loopback,$(DRIVER)),build/plugin,build/plugin-$(DRIVER))$(ARCH_SUFFIX)
PLUGIN_CONFIG = $(if $(filter loopback,$(DRIVER)),config.json,config.$(DRIVER).json)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: build install plugin release test-arm64 unit root-test conformance integration-test fuzz test reliability setup run bench clean

build:
	CGO_ENABLED=0 GOARCH=$(ARCH) go build $(GOFLAGS_BUILD) -o $(BIN) .

# Host mode and Mesos: the binary, and dvdcli as a link to it.
PREFIX ?= /usr
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/rexray
	ln -sf rexray $(DESTDIR)$(PREFIX)/bin/dvdcli

# $(PLUGIN_DIR) is what `docker plugin create` takes; with DOCKER_HOST set
# the plugin is created there as $(PLUGIN).
plugin: build
	@test -f $(PLUGIN_CONFIG) || { echo "no $(PLUGIN_CONFIG): DRIVER is loopback, rbd or virtualbox"; exit 1; }
	hack/plugin-rootfs.sh $(BIN) $(PLUGIN_DIR)/rootfs $(DRIVER) $(ARCH)
	cp $(PLUGIN_CONFIG) $(PLUGIN_DIR)/config.json
	@if [ -n "$$DOCKER_HOST" ]; then \
		docker plugin rm -f $(PLUGIN) >/dev/null 2>&1 || true; \
		docker plugin create $(PLUGIN) $(PLUGIN_DIR); \
	fi

# Every driver's plugin for every architecture, pushed to REGISTRY as
# REGISTRY/rexray/DRIVER:VERSION-ARCH through DOCKER_HOST's dockerd (a
# Docker plugin has one architecture: there is no multi-arch tag).
RELEASE_DRIVERS ?= loopback rbd virtualbox
RELEASE_ARCHS   ?= amd64 arm64
release:
	@test -n "$(REGISTRY)" || { echo "make release needs REGISTRY=host:port"; exit 1; }
	hack/release.sh "$(REGISTRY)" "$(VERSION)" "$(RELEASE_DRIVERS)" "$(RELEASE_ARCHS)"

# The arm64 build on this host, emulated (qemu-user-static in binfmt_misc,
# hack/binfmt.sh): the unit tests under qemu-user, then make release into
# the suite's registry and the arm64 plugin installed from it on a real
# dockerd (TestArm64Plugin).
test-arm64: setup plugin
	hack/binfmt.sh arm64
	GOARCH=arm64 hack/unit.sh
	DOCKER_ENGINE=$(DOCKER_ENGINE) go test -tags integration,emulated -count=1 -v -timeout 10m -run '^TestArm64Plugin$$' ./integration-tests/

# The tests that need no root, loop devices or dockerd, run as nobody when
# make runs as root; it reports how many ran, and fails on any skip.
unit:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go vet -tags integration ./...
	hack/unit.sh

# The packages' tests that need root: real loop devices, mkfs and mounts
# (and each driver's TestConformance that needs them), as root.
root-test:
	go test -tags integration -count=1 $$(go list ./... | grep -v /integration-tests)

# The drivers' conformance suite (drivers/drivertest) alone, on the real
# platforms: loopback on loop devices, rbd on a Ceph cluster it starts
# (hack/ceph-up.sh); root-test runs it too. make unit runs it on memdriver
# and the VirtualBox fake. Needs root; about 40 s.
conformance:
	go test -tags integration -count=1 -v -run '^TestConformance$$' ./drivers/...

# The suite on a real dockerd of DOCKER_ENGINE: 28.5 (forky's), 26.1
# (trixie's), each from a Debian tree of its own (hack/engine.sh), or 20.10
# (Debian 12's, on the host). INTEGRATION_RUN is go test's -run.
# FAULT_POINTS kills of the plugin (100) and SOAK_OPS soak operations (200)
# are the short form CI runs. NFS_VERSIONS are TestNFS's (4.2,3: both).
DOCKER_ENGINE   ?= 28.5
INTEGRATION_RUN ?=
FAULT_POINTS ?= 100
SOAK_OPS     ?= 200
NFS_VERSIONS ?= 4.2,3
INTEGRATION_TIMEOUT ?= 25m
integration-test: plugin
	@echo "=== integration tests on Docker $(DOCKER_ENGINE)$(if $(INTEGRATION_RUN), (-run '$(INTEGRATION_RUN)'))"
	DOCKER_ENGINE=$(DOCKER_ENGINE) FAULT_POINTS=$(FAULT_POINTS) SOAK_OPS=$(SOAK_OPS) NFS_VERSIONS=$(NFS_VERSIONS) go test -tags integration -count=1 -v -timeout $(INTEGRATION_TIMEOUT) -run '$(INTEGRATION_RUN)' ./integration-tests/

# Every fuzz target: about 10 s each, or FUZZTIME each (10m in make
# reliability).
fuzz:
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

# The plugin's own checks, run on every engine: install from the registry,
# create/mount/unmount/remove, restarts, upgrades, and where engines differ.
# (No $: make would expand it once more in the make it is handed to.)
ENGINE_CHECKS := ^(TestPlugin|TestFaults|TestPluginUpgrade|TestPluginUpgradeFailureRestores|TestEngine)/^(InstallFromRegistry|CreateInspectWriteRead|SharedByTwoContainers|DisableEnableKeepsMounts|RemoveInUseAndRemoveDisable|NothingLeftBehind|DockerdRestart|HostReboot|DockerAloneLosesTheSources|RexrayKeepsEveryVolume|RemoteDoesNotExist|EnableFailsAfterTheSwap|StoreThatCannotBeSetBack|VolumeGoneAfterTheUpgrade|NewPrivilegeRefused|APINegotiation|VolumePrune|ClusterVolumeFlags)

test: setup
	@echo "=== make test: unit, root and fuzz tests; the integration suite on Docker 28.5; the plugin's checks on Docker 20.10 and 26.1; the arm64 build, emulated"
	$(MAKE) unit
	$(MAKE) root-test
	$(MAKE) fuzz
	$(MAKE) integration-test DOCKER_ENGINE=28.5
	$(MAKE) integration-test DOCKER_ENGINE=20.10 INTEGRATION_RUN='$(ENGINE_CHECKS)'
	$(MAKE) integration-test DOCKER_ENGINE=26.1 INTEGRATION_RUN='$(ENGINE_CHECKS)'
	$(MAKE) test-arm64

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
# a few minutes on 2 cores. BENCH_SECTIONS picks sections (e.g. 3,6,9);
# PEER_SOCKET=/run/docker/plugins/other.sock (with PEER_CREATE_OPTS) adds
# section 6, against that plugin. See docs/performance.md.
BENCH_RUNS ?= 5
BENCH_DOCKER_RUNS ?= 30
BENCH_SECTIONS ?= 1,2,3,4,5,6,7,8,9
BENCH_OUT  ?= build/bench.json
bench: setup plugin
	go run ./bench -binary bin/rexray -runs $(BENCH_RUNS) -docker-runs $(BENCH_DOCKER_RUNS) -sections $(BENCH_SECTIONS) -out $(BENCH_OUT)

clean:
	rm -rf bin build
