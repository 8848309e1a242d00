"""tools/devenv.py: what the harness says when it finds no Odoo."""

import importlib.util
import sys
from pathlib import Path

import pytest

# tests/pure runs from a linked folder: resolve() finds the checkout, and its tools/ folder.
_TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def devenv(monkeypatch):
    monkeypatch.syspath_prepend(str(_TOOLS))  # devenv imports logscan beside it
    spec = importlib.util.spec_from_file_location("devenv_under_test", _TOOLS / "devenv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("ODOO_PATH", raising=False)
    monkeypatch.setattr(module, "probe_odoo", lambda: (None, "No module named 'odoo'"))
    yield module
    sys.modules.pop("devenv_under_test", None)


def test_no_odoo_and_no_tarball_names_where_the_tarball_was_looked_for(devenv, monkeypatch):
    monkeypatch.delenv("ESD_ODOO_TARBALL", raising=False)
    monkeypatch.setattr(devenv, "ROOT", Path("/nowhere/clone"))
    with pytest.raises(devenv.HarnessError) as caught:
        devenv.find_odoo()
    message = str(caught.value)
    assert "Odoo is not importable (No module named 'odoo')" in message
    assert "no Odoo source tarball either: none in /nowhere/shared/odoo" in message
    assert "ESD_ODOO_TARBALL names another" in message
    assert "git clone -b 18.0" in message  # the two standard ways follow


def test_a_named_tarball_that_is_missing_is_named(devenv, monkeypatch, tmp_path):
    monkeypatch.setenv("ESD_ODOO_TARBALL", str(tmp_path / "odoo.tar.xz"))
    with pytest.raises(devenv.HarnessError) as caught:
        devenv.find_odoo()
    assert f"ESD_ODOO_TARBALL={tmp_path / 'odoo.tar.xz'} is not a file" in str(caught.value)


def test_odoo_path_given_says_nothing_of_tarballs(devenv, monkeypatch, tmp_path):
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo" / "__init__.py").write_text("")
    monkeypatch.setenv("ODOO_PATH", str(tmp_path))
    with pytest.raises(devenv.HarnessError) as caught:
        devenv.find_odoo()
    assert "tarball" not in str(caught.value)
