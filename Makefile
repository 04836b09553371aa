# Thin wrapper around CMake; see README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

.PHONY: all deps build test demo bench docs fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

demo: build
	@$(BUILD)/intentd demo

# libFuzzer (tests/fuzz/): message bytes, generated writer schemas and whole
# files (containers, gzip, line formats), each for a third of FUZZ_SECONDS;
# CI gives 60 s in all.
fuzz: deps
	@scripts/deps.sh fuzz
	@OUT=$(BUILD)/fuzz tests/fuzz/run.sh $(FUZZ_SECONDS)

# Every benchmark in one run (~10 min on 2 cores): the table on
# stdout, build/bench/results.json; docs/BENCHMARKS.md says how to read it.
bench: build
	@scripts/deps.sh bench
	@bench/run.sh $(BUILD)
	@BUILD=$(BUILD) bench/accuracy.sh

docs: build
	@cmake --build $(BUILD) --target docs

clean:
	rm -rf $(BUILD)
