# Two commands matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PORT ?= 8069

.PHONY: test test-pure demo demo-reset lint bench clean

test-pure:
	@$(PYTHON) tools/devenv.py test-pure $(PYTEST_ARGS)

bench:
	@$(PYTHON) tools/devenv.py bench

test:
	@$(PYTHON) tools/devenv.py test $(PYTEST_ARGS)

demo:
	@$(PYTHON) tools/devenv.py demo --port $(PORT)

demo-reset:
	@$(PYTHON) tools/devenv.py demo-reset

lint:
	@.venv/bin/python -m ruff check . && .venv/bin/python -m ruff format --check .

clean:
	rm -rf .build .venv
