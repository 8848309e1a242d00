"""The pure package must stay importable without Odoo."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "microsoft_esd"


def _imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_no_module_of_the_package_imports_odoo():
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "odoo" in set(_imported_roots(path))
    ]
    assert offenders == []


def test_package_imports_with_odoo_blocked():
    # A meta-path hook refuses any odoo import: every module of the package must still load.
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'odoo' or name.startswith('odoo.'):\n"
        "            raise ImportError('odoo is blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import microsoft_esd\n"
        "for info in pkgutil.walk_packages(microsoft_esd.__path__, 'microsoft_esd.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
