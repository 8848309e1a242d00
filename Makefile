# Two commands matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PORT ?= 8069
# Odoo's own suites for `make test-odoo`; WITHOUT_ADDON=1 runs them without microsoft_esd.
ODOO_SUITES ?= sale sale_management portal account website_sale
# Odoo modules installed beside the addon in the test and demo databases (e.g. payment_demo).
ESD_EXTRA_MODULES ?= payment_demo
export ESD_EXTRA_MODULES

.PHONY: test test-pure test-odoo demo demo-reset lint pot bench soak clean

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

# ruff, pylint-odoo (OCA's .pylintrc for 18.0) and OCA's module/.po checks; fails on any message.
lint:
	@$(PYTHON) tools/devenv.py lint

# i18n/microsoft_esd.pot, exported by Odoo from a throw-away database (tests/test_i18n.py checks it).
pot:
	@$(PYTHON) tools/devenv.py pot

clean:
	rm -rf .build .venv
