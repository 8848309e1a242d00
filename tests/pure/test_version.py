"""One version number: the addon's manifest and the pure package's pyproject.toml agree."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_manifest_and_pyproject_have_the_same_version():
    manifest = ast.literal_eval((ROOT / "__manifest__.py").read_text())
    pyproject = re.search(
        r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE
    )
    assert pyproject, "pyproject.toml has no version"
    assert manifest["version"] == pyproject.group(1)
    assert re.fullmatch(r"18\.0\.\d+\.\d+\.\d+", manifest["version"])


def test_every_migration_is_for_a_version_up_to_the_manifest():
    manifest = ast.literal_eval((ROOT / "__manifest__.py").read_text())

    def key(version):
        return [int(part) for part in version.split(".")]

    for folder in (ROOT / "migrations").iterdir():
        assert key(folder.name) <= key(manifest["version"]), folder.name
