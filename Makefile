# Set-up and entry points. Every target creates the environment from nothing if needed and is safe to re-run.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.think2seg-setup
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: setup browser demo demo-train policies sam2-mini-t sam2-mini-s test lint reports clean-venv
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# plain registry torch + torchvision (never mix with a local +cpu torch wheel: torchvision::nms breaks)
	$(PIP) install -q torch==2.15.0 torchvision==0.29.2
	# sam2 and deepspeed build against the installed torch: no build isolation (else a 2nd torch is fetched)
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation sam2==1.1.0
	DS_BUILD_OPS=0 $(PIP) install -q --no-build-isolation deepspeed==0.19.8
	$(PIP) install -q -e '.[dev,notebooks,sam2,deepspeed,browser,geo]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (think2seg)" >/dev/null
	$(PY) -c "import think2seg, torch, torchvision, sam2, trl, rasterio, shapely; print('think2seg set up: torch', torch.__version__)"
	touch $@

# the notebook-06 browser test drives Debian's chromium through Playwright (no browser download): as root with
# apt-get, install it when missing (~1 min, once); elsewhere that test is skipped with the reason
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "could not install chromium: the browser test will be skipped (failed under THINK2SEG_REQUIRE_BROWSER=1)"; fi

demo: setup        ## the embedded default, end to end, into reports/ (reuses the shipped GRPO policies)
	$(VENV)/bin/think2seg reproduce --profile embedded

demo-train: setup  ## the same, with notebook 03's two 20-minute GRPO runs done here (~1 h on 2 cores)
	$(VENV)/bin/think2seg reproduce --profile embedded_train

policies: setup    ## rebuild the shipped GRPO policies think2seg/assets/tiny_grpo* (~55 min on 2 cores)
	$(VENV)/bin/think2seg ship-policies

sam2-mini-t: setup  ## rebuild the shipped SAM2 sam2:mini-t (~2 h on 2 cores): 50 min, then resumed to 7,000 steps (docs/sam2.md)
	$(VENV)/bin/think2seg sam2-train --config configs/sam2_mini/mini-t.yaml --out runs/sam2-mini-t
	$(VENV)/bin/think2seg sam2-train --config configs/sam2_mini/mini-t.yaml --out runs/sam2-mini-t --steps 7000 --max-minutes 118 --ship

sam2-mini-s: setup  ## rebuild the shipped SAM2 sam2:mini-s (~1 h 50 min on 2 cores, docs/sam2.md)
	$(VENV)/bin/think2seg sam2-train --config configs/sam2_mini/mini-s.yaml --out runs/sam2-mini-s --ship

test: setup browser  ## the whole test suite (CPU, offline)
	$(PY) -m pytest -q

lint: setup      ## ruff, and the import contracts of pyproject.toml (layers: a stage imports only those below)
	$(VENV)/bin/ruff check think2seg tests
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)
