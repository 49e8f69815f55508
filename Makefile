# The two commands a new machine needs: `make demo` and `make test`.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: deps configure build tools test test-sanitize demo bench bench-core bench-control-plane fuzz fuzz-long chaos clean

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DSWITCHBOARD_WERROR=$(if $(CI),ON,OFF) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The Kubernetes tools the tests run against (kube-apiserver, etcd, kubectl, ...), built
# from source once and cached outside the checkout; 30 ms when cached, ~20 min on a
# fresh machine (progress on stderr).
tools:
	@bash scripts/test-tools.sh build >/dev/null

test: build tools
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Unit, integration, conformance and fuzz-replay tests under ASan + UBSan, in build-sanitize.
test-sanitize: deps
	@JOBS=$(JOBS) bash scripts/sanitize.sh build-sanitize

demo: build
	@bash scripts/demo.sh $(BUILD)

bench-core: build
	@$(BUILD)/bin/switchboard-bench-core --benchmark_min_time=0.2

# bench-core, then the data-plane suite: bench/results/latest.json, docs/benchmarks.md
# "Data plane". BENCH_QUICK=1 for a few seconds per system (results under $(BUILD)/).
# Then the control-plane suite (bench-control-plane, below).
bench: bench-core tools
	@bash scripts/bench-dataplane.sh --bin $(BUILD)/bin --command "make bench"
	@bash scripts/bench-control-plane.sh --bin $(BUILD)/bin --command "make bench"

# The control plane under load: 1,000 EventRoutes, 50 edits, a burst of 5,000 changes, on a
# real kube-apiserver with the real controller and router pods (bench/results/
# controlplane.json, docs/benchmarks.md "Control plane"). 6 to 20 minutes on 2 cores.
bench-control-plane: build tools
	@bash scripts/bench-control-plane.sh --bin $(BUILD)/bin --command "make bench-control-plane"

fuzz:
	@bash scripts/fuzz.sh $(or $(FUZZ_SECONDS),30)

# Every fuzz target for 10 minutes (FUZZ_SECONDS overrides).
fuzz-long:
	@bash scripts/fuzz.sh $(or $(FUZZ_SECONDS),600)

# The fault suite in full (about 30 minutes, loopback only): kills, restarts, network cuts,
# a slow destination, reload storms, and the whole system with its control plane under
# faults; every event accounted for. Figures in $(BUILD)/chaos/last-run.json.
# SWITCHBOARD_CHAOS_SEED=N replays a run's faults; the other knobs are in scripts/chaos.sh.
# `make test` runs the short versions (label chaos).
chaos: configure tools
	@JOBS=$(JOBS) bash scripts/chaos.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-fuzz build-sanitize
