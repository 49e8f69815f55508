# The two commands a new machine needs: `make demo` and `make test`.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: deps configure build tools test demo bench bench-core fuzz clean

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

demo: build
	@bash scripts/demo.sh $(BUILD)

bench-core: build
	@$(BUILD)/bin/switchboard-bench-core --benchmark_min_time=0.2

bench: bench-core

fuzz:
	@bash scripts/fuzz.sh $(or $(FUZZ_SECONDS),30)

clean:
	rm -rf $(BUILD) build-fuzz
