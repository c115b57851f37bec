# Set-up and the two entry points of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,mnist5k,ray,safetensors]'
	touch $(STAMP)

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
