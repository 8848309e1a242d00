#!/usr/bin/env python3
"""make test-debian: make test on the stack Odoo's own .deb runs on.

Debian's /usr/bin/python3 with the python3-* packages that Odoo's debian/control depends on,
plus python3-msal and Debian's test tools, installed with apt-get (as root). The virtualenv
.build/debian-venv sees them (--system-site-packages); pip adds only what Debian does not ship
(click-odoo, click-odoo-contrib, manifestoo-core), without dependencies, so every library the
addon and Odoo import is Debian's. Odoo's runner runs every Odoo test; Debian's pytest the pure
tests (pytest-odoo's second run is left out: see FROM_PYPI). Odoo's source comes as for make
test; its requirements.txt is not used (ESD_ODOO_DEPS=system).
"""

# A command-line harness: what it prints is what the user reads, not a log.
# pylint: disable=print-used

import os
import re

import devenv
from devenv import BUILD, LOGS, ROOT, HarnessError, run, say

DEBIAN_PYTHON = "/usr/bin/python3"
# Beside Odoo's own: the addon's msal, and the test tools Debian ships.
EXTRA_PACKAGES = (
    "python3-venv python3-msal python3-jwt python3-pytest python3-responses python3-jsonschema "
    "python3-yaml python3-websocket python3-click python3-packaging"
).split()
# Not in Debian: from PyPI, without dependencies (click-odoo-initdb makes the test database;
# standardwebhooks, the reference verifier of the reseller webhooks' signatures, has none).
# pytest-odoo is not used here: its releases for Odoo 18 need pytest 8, Debian 12 ships 7.2, and
# the one for pytest 7 cannot serve Odoo 18's HTTP tests. Odoo's own runner runs every Odoo test,
# Debian's pytest the pure tests.
FROM_PYPI = ["click-odoo", "click-odoo-contrib", "manifestoo-core", "standardwebhooks"]


def odoo_debian_depends(control):
    """The python3-* dependencies of Odoo's debian/control, alternatives kept ('a | b')."""
    text = control.read_text()
    depends = text[text.index("\nDepends:") : text.index("\nPre-Depends:")]
    lines = [line.split("#")[0].strip().rstrip(",") for line in depends.splitlines()]
    return [line for line in lines if re.match(r"python3-", line)]


def main(argv):
    if not os.path.exists(DEBIAN_PYTHON) or not devenv.shutil.which("apt-get"):
        raise HarnessError("make test-debian needs Debian's /usr/bin/python3 and apt-get")
    tree = devenv.unpack_odoo()
    wanted = [*odoo_debian_depends(tree / "debian" / "control"), *EXTRA_PACKAGES]
    why = "for the Debian stack: Odoo's debian/control python3-*, msal, test tools"
    if os.geteuid() == 0 and not devenv.apt_install(wanted, why, command="satisfy"):
        raise HarnessError("apt-get could not install Debian's packages: see .build/logs/apt-*.log")
    venv = BUILD / "debian-venv"
    vpy, marker = venv / "bin" / "python", venv / ".esd-from-pypi"
    if not marker.exists() or marker.read_text() != " ".join(FROM_PYPI):
        devenv.shutil.rmtree(venv, ignore_errors=True)
        log = LOGS / "debian-venv.log"
        say(f"virtualenv {venv} on {DEBIAN_PYTHON}, with Debian's packages")
        steps = [
            [DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", venv],
            [vpy, "-m", "pip", "install", "-q", "--no-deps", *FROM_PYPI],
            [vpy, "-m", "pip", "install", "-q", "--no-deps", "-e", ROOT],
        ]
        for step in steps:
            if run(step, log, "a").returncode:
                raise HarnessError(f"{' '.join(map(str, step[:4]))} failed: see {log}")
        marker.write_text(" ".join(FROM_PYPI))
    env = dict(os.environ, ESD_ODOO_DEPS="system", ESD_STACK="debian-12", ESD_PYTEST_ODOO="0")
    cmd = [vpy, ROOT / "tools" / "devenv.py", "test", *argv]
    return devenv.subprocess.run(list(map(str, cmd)), check=False, env=env).returncode


if __name__ == "__main__":
    devenv.run_tool(main)
