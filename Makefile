# Temper: one-command setup and the everyday targets. Every target installs what is missing first
# (Debian's OpenBLAS, the pinned MLX wheel into .deps/), idempotently.
#
#   make demo      the main job
#   make demo-dpo  SFT then DPO on SmolLM2, held-out preference accuracy and answers before/after
#   make demo-grpo GRPO on the arithmetic word problems from SmolLM2, held-out accuracy before/after
#   make test      the whole test suite (what CI runs)
#   make bench     matmul GFLOPS; make bench-kernels: fused kernels vs MLX vs PyTorch
#
# MLX_WHEEL selects the MLX build: mlx-cpu (default) or mlx-cuda-13 for NVIDIA GPUs.

MLX_WHEEL ?= mlx-cpu
MLX_VERSION ?= 0.32.4
SWIFT ?= swift
DEPS_STAMP := .deps/.$(MLX_WHEEL)-$(MLX_VERSION).installed

.PHONY: all deps build demo demo-dpo demo-grpo test bench bench-kernels clean distclean

all: build

$(DEPS_STAMP): Tools/setup-deps.sh
	MLX_WHEEL=$(MLX_WHEEL) MLX_VERSION=$(MLX_VERSION) ./Tools/setup-deps.sh

deps: $(DEPS_STAMP)
	@MLX_WHEEL=$(MLX_WHEEL) MLX_VERSION=$(MLX_VERSION) ./Tools/setup-deps.sh
	@./Tools/setup-assets.sh

build: deps
	$(SWIFT) build -c release --product temper

demo: build
	.build/release/temper demo

demo-dpo: build
	.build/release/temper demo --dpo

demo-grpo: build
	.build/release/temper demo --grpo

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

bench: build
	.build/release/temper bench matmul

bench-kernels: build
	.build/release/temper bench kernels --json kernels-bench.json

clean:
	rm -rf .build

distclean: clean
	rm -rf .deps
