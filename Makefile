# make demo   a real sweep: mlagents-learn trains PPO on the bundled headless environment (scripts/demo.py)
# make test   the whole test suite, with the real mlagents-learn (installed first if missing)
# make bench  the benchmarks (minutes; not part of the tests)
# make check-pythons  the demo sweep on Python 3.10, 3.12 and 3.13 (downloads torch for each: GBs)
#
# Both install ML-Agents 1.1.0 into $(VENV) with scripts/install_mlagents.py;
# a second run only checks it (a couple of seconds).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ID ?= demo
# Checks that never apply here: subprocess use (B404, B603; never with a shell),
# and the example environment's pseudo-random numbers (B311; a simulation).
BANDIT_SKIPS := B404,B603,B311

.PHONY: demo test bench install check-pythons

install:
	$(PYTHON) scripts/install_mlagents.py --venv $(VENV) --quiet

$(VENV)/.test-requirements: requirements.txt requirements-test.txt scripts/mlagents-constraints.txt | install
	$(BIN)/python -m pip install --quiet -r requirements-test.txt -c scripts/mlagents-constraints.txt
	touch $@

demo:
	$(PYTHON) scripts/demo.py --venv $(VENV) --run-id $(DEMO_ID)

test: install $(VENV)/.test-requirements
	$(BIN)/python -m bandit --quiet --recursive mlagents-learn.py scripts examples bench images --skip $(BANDIT_SKIPS)
	$(BIN)/python -m pytest tests -q -n 2 --dist worksteal

bench: install $(VENV)/.test-requirements
	$(BIN)/python bench/run

check-pythons:
	$(PYTHON) scripts/check_pythons.py
