# Thin wrapper: the build is meson's. Every target installs what it needs first.
BUILD   ?= build/release
ASAN    ?= build/asan

.PHONY: all deps build demo test bench fuzz valgrind format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dbuildtype=release

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	examples/demo.sh $(BUILD)

# The whole suite under ASan and UBSan, real servers included.
test: deps
	BUILD=$(ASAN) tests/run-suite.sh

bench: build
	bench/run.sh $(BUILD)

fuzz: deps
	tests/fuzz/run.sh

valgrind: build
	BUILD=$(BUILD) VALGRIND=1 tests/run-suite.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
