# make demo   a real sweep: mlagents-learn trains PPO on the bundled headless environment
# make test   the whole test suite, with the real mlagents-learn (installed first if missing)
# make bench  the benchmarks (minutes; not part of the tests)
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

.PHONY: demo test bench install

install:
	$(PYTHON) scripts/install_mlagents.py --venv $(VENV) --quiet

$(VENV)/.test-requirements: requirements.txt requirements-test.txt scripts/mlagents-constraints.txt | install
	$(BIN)/python -m pip install --quiet -r requirements-test.txt -c scripts/mlagents-constraints.txt
	touch $@

demo: install
	$(BIN)/python mlagents-learn.py examples/MoveToTarget/sweep.yaml \
	    --env=examples/MoveToTarget/MoveToTarget --num-envs 2 --run-id $(DEMO_ID) \
	    --trainer $(BIN)/mlagents-learn --poll-interval 10 --force
	@echo
	@echo "Results:  results/$(DEMO_ID)-<n>/ (models: MoveToTarget.onnx)"
	@echo "Summary:  results/$(DEMO_ID)-sweep/summary.md (and summary.csv, config_info.txt)"
	@echo "Curves:   $(BIN)/tensorboard --logdir results   then open http://localhost:6006"

test: install $(VENV)/.test-requirements
	$(BIN)/python -m bandit --quiet --recursive mlagents-learn.py scripts examples bench images --skip $(BANDIT_SKIPS)
	$(BIN)/python -m pytest tests -q -n 2

bench: install $(VENV)/.test-requirements
	$(BIN)/python bench/run
