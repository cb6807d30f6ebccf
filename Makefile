# Thin wrapper: every target first makes sure the machine has what it needs.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup build test demo bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

demo: build
	@bash scripts/demo.sh $(BUILD)

bench: build
	@$(BUILD)/lumina bench train --config configs/bench/cpu-small.toml --steps 10

clean:
	rm -rf $(BUILD)
