# Two commands matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PORT ?= 8069
# Odoo's own suites for `make test-odoo`; WITHOUT_ADDON=1 runs them without microsoft_esd.
ODOO_SUITES ?= sale sale_management portal account website_sale
# Odoo modules installed beside the addon in the test and demo databases (e.g. payment_demo).
ESD_EXTRA_MODULES ?= payment_demo
export PORT ODOO_SUITES WITHOUT_ADDON ESD_EXTRA_MODULES
VENV_PY := .venv/bin/python
DEPS := .venv/.esd-deps
HARNESS := @$(VENV_PY) tools/devenv.py
# Files to lint: tracked or new, not ignored.
FILES := git ls-files -z --cached --others --exclude-standard

.PHONY: test test-pure test-compat test-debian test-odoo demo demo-reset lint pot readme bench soak clean

# A virtualenv that sees the machine's site-packages (where Odoo may be installed); pip installs
# the addon's test and lint dependencies again whenever pyproject.toml changes.
$(DEPS): pyproject.toml
	@echo "[esd] virtualenv .venv, with the machine's site-packages; pip install -e .[test,lint] (log: .build/logs/pip.log)"
	@mkdir -p .build/logs
	@$(PYTHON) -m venv --system-site-packages .venv
	@$(VENV_PY) -m pip install --disable-pip-version-check -e '.[test,lint]' > .build/logs/pip.log 2>&1 \
	  || { echo "[esd] ERROR: pip could not install the dependencies: see .build/logs/pip.log" >&2; exit 2; }
	@touch $@

test: $(DEPS)
	$(HARNESS) test $(PYTEST_ARGS)

test-pure: $(DEPS)
	$(HARNESS) test-pure $(PYTEST_ARGS)

# The pure tests on every supported stack (Debian 12, Ubuntu 22.04/24.04, Odoo's pins per Python,
# newest, declared minimums), each in its own virtualenv under .build/compat: STACKS=... picks some.
test-compat: $(DEPS)
	@$(VENV_PY) tools/compat.py $(STACKS)

# make test again on Debian's /usr/bin/python3 with the python3-* packages Odoo's .deb depends on.
test-debian: $(DEPS)
	@$(VENV_PY) tools/debian_stack.py $(PYTEST_ARGS)

test-odoo: $(DEPS)
	$(HARNESS) test-odoo

demo: $(DEPS)
	$(HARNESS) demo

demo-reset: $(DEPS)
	$(HARNESS) demo-reset

# i18n/microsoft_esd.pot, exported by Odoo from a throw-away database (tests/test_i18n.py checks it).
pot: $(DEPS)
	$(HARNESS) pot

# static/description/index.html (the Apps page) from readme/*.md; tests/pure/test_readme_html.py
# fails when it is stale. Standard library only: no virtualenv needed.
readme:
	@$(PYTHON) tools/readme_html.py

# The versions .pre-commit-config.yaml pins, from .venv (no clone, no network); any message fails.
lint: $(DEPS)
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
	@$(FILES) '*.py' | xargs -0 $(VENV_PY) -m pylint --rcfile=.pylintrc
	@.venv/bin/oca-checks-odoo-module __manifest__.py
	@$(FILES) 'i18n/*.po' 'i18n/*.pot' | xargs -0 -r .venv/bin/oca-checks-po
	@echo "[esd] lint: ruff, pylint-odoo (.pylintrc), oca-checks-odoo-module, oca-checks-po: no message"

# BENCH=catalog,provisioning picks some (bench/run.py --help).
bench: $(DEPS)
	@$(VENV_PY) bench/run.py $(if $(BENCH),--only $(BENCH)) $(BENCH_ARGS)

soak: $(DEPS)
	@$(VENV_PY) bench/run.py --soak $(SOAK_ARGS)

clean:
	rm -rf .build .venv
