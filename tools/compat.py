#!/usr/bin/env python3
"""make test-compat: the pure tests on every stack that runs Odoo 18, one line per stack.

Each stack is a throw-away virtualenv in .build/compat/<stack> (kept while its recipe is
unchanged): a Python, and the versions of the addon's libraries that a platform ships or pins.
Debian 12 is Debian's own /usr/bin/python3 with apt's python3-* packages (installed with apt-get
when root); the other stacks are pip installs pinned to the versions the platform ships, to
Odoo's requirements.txt for that Python (markers honoured), to the newest releases, or to the
lowest versions pyproject.toml declares. The project is installed into each (pip checks that
its declared requirements hold with those versions), then the pure tests run from the checkout.
"""

# A command-line harness: what it prints is what the user reads, not a log.
# pylint: disable=print-used

import glob
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import devenv
from devenv import BUILD, LOGS, ROOT, HarnessError, run, say

try:
    import tomllib
except ImportError:  # Python 3.10: pip's own copy of tomli
    from pip._vendor import tomli as tomllib

# Versions of the python3-* packages of each Ubuntu release (jammy, noble), as pip pins.
UBUNTU_22_04 = {
    "cryptography": "3.4.8",
    "pyOpenSSL": "21.0.0",
    "PyJWT": "2.3.0",
    "msal": "1.16.0",
    "requests": "2.25.1",
    "urllib3": "1.26.5",
    "idna": "2.10",  # Ubuntu patches requests for idna 3.3; pip's requests 2.25.1 wants < 3
    "chardet": "4.0.0",
    "pytest": "6.2.5",
    "responses": "0.18.0",  # Ubuntu ships 0.16; the tests need 0.18 (responses.calls' bodies)
    "jsonschema": "3.2.0",
    "PyYAML": "5.4.1",
}
UBUNTU_24_04 = {
    "cryptography": "41.0.7",
    "pyOpenSSL": "23.2.0",
    "PyJWT": "2.7.0",
    "msal": "1.26.0",
    "requests": "2.31.0",
    "urllib3": "2.0.7",
    "idna": "3.6",
    "pytest": "7.4.4",
    "responses": "0.25.0",
    "jsonschema": "4.10.3",
    "PyYAML": "6.0.1",
}
# Debian 12: what Odoo's .deb runs on. The runtime and the test tools, all from apt.
DEBIAN_PACKAGES = (
    "python3-venv python3-cryptography python3-openssl python3-jwt python3-msal python3-requests "
    "python3-urllib3 python3-pytest python3-responses python3-jsonschema python3-yaml"
).split()
# What the report names for each stack.
SHOWN = ("cryptography", "pyOpenSSL", "PyJWT", "msal", "requests", "urllib3")


def pyenv_python(version):
    """The newest interpreter of a minor version: pyenv's, or pythonX.Y on PATH."""
    found = sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")),
        key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parts[-3])],
    )
    return found[-1] if found else shutil.which(f"python{version}")


def odoo_requirements():
    """Odoo's requirements.txt: the importable Odoo's, else the tarball's (devenv.find_odoo)."""
    found, _why = devenv.probe_odoo()
    tree = Path(found[1]).parent if found else devenv.unpack_odoo()
    if not (tree / "requirements.txt").exists():  # an Odoo installed without its source tree
        tree = devenv.unpack_odoo()
    return tree / "requirements.txt"


def declared_minimums():
    """pyproject.toml's runtime and pure-test requirements, each pinned to its lowest version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test-pure"]]:
        name, low = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", spec).groups()
        pins[name] = low
    return pins


def stacks():
    """name -> (python, how): how is 'debian', a dict of pins, a requirements file, or 'newest'."""
    return {
        "debian-12": ("/usr/bin/python3", "debian"),
        "ubuntu-22.04": (pyenv_python("3.10"), UBUNTU_22_04),
        "ubuntu-24.04": (pyenv_python("3.12"), UBUNTU_24_04),
        "odoo-pins-3.10": (pyenv_python("3.10"), "odoo"),
        "odoo-pins-3.11": (pyenv_python("3.11"), "odoo"),
        "odoo-pins-3.12": (pyenv_python("3.12"), "odoo"),
        "newest-3.13": (pyenv_python("3.13"), "newest"),
        "minimums-3.10": (pyenv_python("3.10"), declared_minimums()),
    }


def prepare(name, python, how):
    """The stack's virtualenv, made again when its recipe changed; its Python."""
    venv, log = BUILD / "compat" / name, LOGS / f"compat-{name}.log"
    recipe = [python, how if how != "odoo" else odoo_requirements().read_text()]
    recipe.append((ROOT / "pyproject.toml").read_text())
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    marker, vpy = venv / ".esd-recipe", venv / "bin" / "python"
    if marker.exists() and marker.read_text() == digest:
        return vpy
    shutil.rmtree(venv, ignore_errors=True)
    if how == "debian":
        missing = [p for p in DEBIAN_PACKAGES if not devenv.dpkg_installed(p)]
        if missing and not devenv.apt_install(missing, "for the Debian 12 stack"):
            raise HarnessError(f"{name}: needs apt-get install {' '.join(missing)} (as root)")
    system = ["--system-site-packages"] if how == "debian" else []
    if run([python, "-m", "venv", *system, venv], log).returncode:
        raise HarnessError(f"{name}: {python} -m venv failed, see {log}")
    pip = [vpy, "-m", "pip", "--disable-pip-version-check", "install"]
    if how == "debian":
        # Debian's packages only; pip installs the project itself, without dependencies, so that
        # `pip check` says whether Debian's versions meet what pyproject.toml declares.
        steps = [[*pip, "--no-deps", "-e", ROOT]]
    elif how == "newest":
        steps = [[*pip, "--upgrade", "-e", f"{ROOT}[test-pure]"]]
    else:
        constraints = venv / "constraints.txt"
        if how == "odoo":
            shutil.copy(odoo_requirements(), constraints)
        else:
            constraints.write_text("".join(f"{k}=={v}\n" for k, v in how.items()))
        steps = [[*pip, "-c", constraints, "-e", f"{ROOT}[test-pure]"]]
        if how == "odoo" or "pyOpenSSL" in how:  # Odoo installs it; urllib3 may use it
            steps.append([*pip, "-c", constraints, "pyOpenSSL"])
    for step in steps:
        if run(step, log, "a", env=devenv.pip_env()).returncode:
            raise HarnessError(f"{name}: {' '.join(map(str, step[3:]))} failed, see {log}")
    if how == "debian":
        check = run([vpy, "-m", "pip", "check"])  # other Debian packages may miss optional ones
        ours = [line for line in check.stdout.splitlines() if line.startswith("microsoft-esd ")]
        if ours:
            raise HarnessError(f"{name}: Debian's packages do not meet pyproject.toml: {ours[0]}")
    marker.write_text(digest)
    return vpy


def versions(vpy):
    """name -> version of the libraries SHOWN, as the stack's Python imports them."""
    code = f"""import json, importlib.metadata as m, platform
found = {{"Python": platform.python_version()}}
for name in {list(SHOWN)!r}:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(found))"""
    probe = run([vpy, "-c", code])
    return json.loads(probe.stdout) if probe.returncode == 0 else {}


def main(argv):
    """Every stack (or those named in argv), one line each; exit 1 if one is not green."""
    wanted = stacks()
    unknown = [name for name in argv if name not in wanted]
    if unknown:
        raise HarnessError(f"unknown stack {', '.join(unknown)}: one of {', '.join(wanted)}")
    results = []
    for name, (python, how) in wanted.items():
        if argv and name not in argv:
            continue
        if not python or not Path(python).exists():
            results.append((name, False, "no interpreter (install it, e.g. with pyenv)"))
            continue
        try:
            vpy = prepare(name, python, how)
        except HarnessError as exc:
            results.append((name, False, str(exc)))
            continue
        shown = versions(vpy)
        rc, summary = devenv.pure_tests_with(vpy, log=LOGS / f"compat-{name}-pytest.log")
        label = ", ".join(f"{k} {v}" for k, v in shown.items())
        results.append((name, rc == 0, f"{summary}  ({label})"))
        say(f"{name}: {'green' if rc == 0 else 'FAILED'}: {summary}")
    print("\n[esd] test-compat: the pure tests on each stack")
    for name, ok, text in results:
        print(f"  {'green ' if ok else 'FAILED'} {name:15} {text}")
    failed = [name for name, ok, _ in results if not ok]
    if failed:
        print(f"[esd] ERROR: test-compat: {', '.join(failed)} not green", file=sys.stderr)
    return int(bool(failed))


if __name__ == "__main__":
    devenv.run_tool(main)
