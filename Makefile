# VQ Studio: `make run` starts the app on the demo corpus, `make test` runs the whole suite.
# Both create the virtual environment first if it is missing.
#
# TORCH_SPEC picks the PyTorch build. The default lets pip choose (a CUDA build where one fits);
# CI asks for the CPU build with `make test TORCH_SPEC='torch==2.13.0'`.

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch>=2.10
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.vqstudio-installed

# System libraries: PortAudio for sounddevice; xcb, EGL and fontconfig for a Qt window;
# Xvfb for the real-window tests; desktop-file-utils to validate the desktop entry; espeak-ng
# and FluidSynth only to regenerate the demo corpus.
SYSTEM_PACKAGES := libportaudio2 libasound2 xvfb xauth libxcb-cursor0 libxcb-icccm4 \
	libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 libxcb-shape0 \
	libxcb-xinerama0 libxcb-randr0 libegl1 libgl1 libfontconfig1 libdbus-1-3 desktop-file-utils
DEMO_PACKAGES := espeak-ng fluidsynth fluid-soundfont-gm

.PHONY: run test env system-packages bench demo-corpus desktop wheel clean

run: env
	$(PY) main.py

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test module to a process so that its
# module-scoped trained runs are made once: on 2 cores one process leaves a core idle while a test
# waits on a subprocess, a real-time audio stream or a timer. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: env
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope) $(PYTEST_ARGS)

env: system-packages $(STAMP)

system-packages:
	@sh scripts/ensure_system_packages.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@$(PY) -c "import torch; print('torch', torch.__version__, '| CUDA available:', torch.cuda.is_available())"
	@echo "$(TORCH_SPEC)" > $@

# A different TORCH_SPEC than the one the environment was built with rebuilds it.
ifneq ($(shell cat $(STAMP) 2>/dev/null),$(TORCH_SPEC))
.PHONY: $(STAMP)
endif

bench: env
	$(PY) benchmarks/model_speed.py --preset tiny-cpu --preset seed-baseline
	$(PY) benchmarks/train_speed.py --preset tiny-cpu --preset seed-baseline
	$(PY) benchmarks/loss_redraw.py

demo-corpus: env
	@sh scripts/ensure_system_packages.sh $(DEMO_PACKAGES)
	$(PY) scripts/make_demo_corpus.py

# The applications-menu entry and icon for this environment's VQ Studio (Linux desktops).
desktop: env
	$(VENV)/bin/vqstudio install-desktop

# A wheel (with the presets, demo corpus and icon inside) in dist/, for `pip install` elsewhere.
wheel: env
	$(PY) -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
