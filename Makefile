# Two commands matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PORT ?= 8069
# Odoo's own suites for `make test-odoo`; WITHOUT_ADDON=1 runs them without microsoft_esd.
ODOO_SUITES ?= sale sale_management portal account
# Odoo modules installed beside the addon in the test and demo databases (e.g. payment_demo).
ESD_EXTRA_MODULES ?= payment_demo
export ESD_EXTRA_MODULES

.PHONY: test test-pure test-odoo demo demo-reset lint bench soak clean

test-pure:
	@$(PYTHON) tools/devenv.py test-pure $(PYTEST_ARGS)

bench:
	@$(PYTHON) tools/devenv.py bench

soak:
	@$(PYTHON) tools/devenv.py soak $(SOAK_ARGS)

test:
	@$(PYTHON) tools/devenv.py test $(PYTEST_ARGS)

test-odoo:
	@$(PYTHON) tools/devenv.py test-odoo --suites "$(ODOO_SUITES)" $(if $(filter-out 0,$(WITHOUT_ADDON)),--without-addon)

demo:
	@$(PYTHON) tools/devenv.py demo --port $(PORT)

demo-reset:
	@$(PYTHON) tools/devenv.py demo-reset

lint:
	@.venv/bin/python -m ruff check . && .venv/bin/python -m ruff format --check .

clean:
	rm -rf .build .venv
