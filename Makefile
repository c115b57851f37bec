# Set-up and the two entry points of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

# pip stays quiet (-qq: errors only), so that what `make demo` prints is the tool's own output:
# a single -q still shows a warning for every package index location that a machine's pip
# configuration names but lacks, and setuptools' banner about editable installs.
PIP := $(BIN)/python -m pip install -qq

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	@echo "installing ticketlab and its dependencies into $(VENV) (pip, quiet; a few minutes the first time)"
	$(PIP) -c constraints.txt -e '.[test,mnist5k,ray,safetensors]'
	@touch $(STAMP)

install: $(STAMP)

# The main job on the embedded digits data: a SynFlow ticket, shown, then compared with a
# random ticket of the same density (what do they share beyond chance?).
demo: $(STAMP)
	@mkdir -p out
	$(BIN)/ticketlab mine --method synflow -o out/demo_synflow.h5
	$(BIN)/ticketlab inspect out/demo_synflow.h5
	$(BIN)/ticketlab mine --method random -o out/demo_random.h5 --quiet > /dev/null
	$(BIN)/ticketlab compare out/demo_synflow.h5 out/demo_random.h5 --metric overlap --profile-plot out/demo_profiles.png

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) out build *.egg-info
