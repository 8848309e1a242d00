#!/usr/bin/env python3
"""Development harness behind make test, make test-odoo, make demo and make pot.

Run by the Makefile with .venv's Python (the Makefile makes the virtualenv). One function per
step: Odoo 18 (importable, or ODOO_PATH); PostgreSQL (the server PG* name, or localhost's, if it
lets us in, else our private cluster); this checkout exposed to Odoo as the addon microsoft_esd;
a configuration file; then the run. Delegated: the test database to click-odoo-initdb (and its
template cache), dropping to `odoo-bin db drop`, tests to Odoo's runner and pytest-odoo. A
foreseen failure ends in one line "[esd] ERROR: ...". Standard library only (and Odoo's psycopg2).
"""

# A command-line harness: what it prints is what the user reads, not a log.
# pylint: disable=print-used

import ast
import atexit
import contextlib
import functools
import getpass
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import logscan

ROOT = Path(__file__).resolve().parent.parent
ADDON = "microsoft_esd"
BUILD, LOGS = ROOT / ".build", ROOT / ".build" / "logs"
PY = Path(sys.executable)
KEY = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]  # names our folders outside the checkout
ODOO_HOWTO = (
    "install Odoo 18.0 one of the two standard ways: from source (git clone -b 18.0 --depth 1 "
    "https://github.com/odoo/odoo; pip install -r odoo/requirements.txt; pip install -e odoo, or "
    "ODOO_PATH=/path/to/odoo instead of that last step), or Odoo's official packages (the nightly "
    "Debian/Ubuntu repository https://nightly.odoo.com/18.0/nightly/deb/, apt-get install odoo)"
)


class HarnessError(Exception):
    """A foreseen failure: its message is the one line shown to the user."""


def say(msg):
    print(f"[esd] {msg}", flush=True)


def run(cmd, log=None, mode="w", **kwargs):
    """cmd, its output captured as text (or written to log); the finished process."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(log or os.devnull, mode) as out:
        output = {"stdout": out, "stderr": subprocess.STDOUT} if log else {"capture_output": True}
        return subprocess.run(list(map(str, cmd)), check=False, text=True, **output, **kwargs)


def last_line(text, default="no output"):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else default


def extra_modules():
    """Odoo modules to install beside the addon in the test and demo databases."""
    return os.environ.get("ESD_EXTRA_MODULES", "").replace(",", " ").split()


def apt_install(packages, why, command="install"):
    """Debian's packages, installed when we are root on a machine with apt-get; whether so.

    ``command="satisfy"`` takes dependency lines ("a | b") as Debian's control files write them."""
    packages = [packages] if isinstance(packages, str) else list(packages)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    log, env = LOGS / f"apt-{packages[0]}.log", dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    what = " ".join(packages) if len(packages) <= 4 else f"{len(packages)} packages"
    say(f"installing {what} {why} (apt-get {command}, log: {log})")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", command, "-y", "-qq", *packages]):
        if run(cmd, log, "a", env=env).returncode:
            say(f"apt-get could not install {' '.join(packages)}: see {log}")
            return False
    return True


def dpkg_installed(package):
    """Whether Debian's package is installed."""
    if not shutil.which("dpkg-query"):
        return False
    probe = run(["dpkg-query", "-W", "-f", "${Status}", package])
    return probe.returncode == 0 and probe.stdout.endswith(" installed")


def pip_env():
    """pip's environment for old pins built from source: Odoo's cbor2 5.4.2 needs a setuptools that
    still has pkg_resources, Ubuntu 22.04's PyYAML 5.4.1 a Cython before 3."""
    constraint = BUILD / "pip-build-constraints.txt"
    constraint.parent.mkdir(parents=True, exist_ok=True)
    constraint.write_text("setuptools<81\nCython<3\n")
    return dict(os.environ, PIP_CONSTRAINT=str(constraint))


def ensure_program(names, package, why, missing):
    """One of names on PATH, else Debian's package when root, else the line missing."""
    if not any(map(shutil.which, names)) and not apt_install(package, why):
        say(f"{missing} (apt-get install {package})")


def ensure_chromium():
    """Odoo's tours need Chromium."""
    names = ["chromium", "chromium-browser", "google-chrome"]
    ensure_program(names, "chromium", "for the tours", "Chromium is missing: no tours will run")


def ensure_wkhtmltopdf():
    """Odoo's PDFs: the shop's order confirmation email carries one (make demo, the checkout
    benchmark); Odoo's tests render HTML instead."""
    missing = "wkhtmltopdf is missing: shop orders cannot be confirmed (their email has a PDF)"
    ensure_program(["wkhtmltopdf"], "wkhtmltopdf", "for Odoo's PDFs", missing)


def odoo_env(**extra):
    env, path = dict(os.environ, **{k: str(v) for k, v in extra.items()}), os.getenv("ODOO_PATH")
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    return env


def probe_odoo():
    """(version, package folder) of the Odoo that Python imports (with ODOO_PATH), or None."""
    code = "import json, odoo, odoo.release as r; print(json.dumps([r.version, *odoo.__path__]))"
    probe = run([PY, "-c", code], env=odoo_env())
    if probe.returncode:
        return None, last_line(probe.stderr)
    return tuple(json.loads(last_line(probe.stdout))[:2]), None


@functools.cache
def find_odoo():
    """The folder of the odoo package that Python imports (with ODOO_PATH), if it is 18.0.

    When none is importable, the Odoo 18.0 source tree of ../shared/odoo is installed into
    .build/odoo (see install_odoo)."""
    path = os.environ.get("ODOO_PATH")
    if path and not (Path(path) / "odoo" / "__init__.py").is_file():
        raise HarnessError(f"ODOO_PATH={path} has no odoo/__init__.py; {ODOO_HOWTO}")
    found, why = probe_odoo()
    if not found and not path and odoo_tarball():
        install_odoo()
        found, why = probe_odoo()
    if not found:
        tarball = (
            "" if path or odoo_tarball() else f"; no Odoo source tarball either: {tarball_wanted()}"
        )
        raise HarnessError(f"Odoo is not importable ({why}){tarball}; {ODOO_HOWTO}")
    version, pkg = found
    if not version.startswith("18.0"):
        raise HarnessError(f"found Odoo {version} at {pkg}, this addon needs 18.0; {ODOO_HOWTO}")
    say(f"Odoo {version} found at {pkg}")
    return Path(pkg)


def odoo_tarball():
    """The Odoo 18.0 source tree for machines without Odoo (ESD_ODOO_TARBALL or ../shared/odoo)."""
    named = os.environ.get("ESD_ODOO_TARBALL")
    found = (
        [named] if named else sorted(glob.glob(str(ROOT.parent / "shared/odoo/odoo-18.0-*.tar.xz")))
    )
    return Path(found[-1]) if found and Path(found[-1]).is_file() else None


def tarball_wanted():
    """Where the harness looks for the Odoo source tarball, in words."""
    named = os.environ.get("ESD_ODOO_TARBALL")
    if named:
        return f"ESD_ODOO_TARBALL={named} is not a file"
    return (
        f"none in {ROOT.parent / 'shared' / 'odoo'} (odoo-18.0-*.tar.xz beside the checkout; "
        "ESD_ODOO_TARBALL names another)"
    )


def unpack_odoo():
    """The tarball's Odoo source tree in .build/odoo (unpacked once); its folder."""
    tarball, folder = odoo_tarball(), BUILD / "odoo"
    tree = folder / "odoo-18.0"  # the tarball's one top folder
    if not tarball:
        raise HarnessError(f"no Odoo source tarball: {tarball_wanted()}")
    if not (tree / "odoo-bin").exists():
        say(f"no Odoo importable: unpacking {tarball} into {folder}")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if run(["tar", "-xJf", tarball, "-C", folder]).returncode or not tree.is_dir():
            raise HarnessError(f"could not unpack {tarball} into {folder}")
    return tree


def install_odoo():
    """Odoo 18.0 from the tarball into .build/odoo, importable by this Python through a .pth file.

    Its Python requirements: Odoo's requirements.txt for this Python (markers honoured), installed
    with pip into the virtualenv; with ESD_ODOO_DEPS=system, none: the machine's packages (Debian's
    python3-*) must provide them, and a missing one is named."""
    tree = unpack_odoo()
    system = os.environ.get("ESD_ODOO_DEPS") == "system"
    marker = Path(sys.prefix) / ".esd-odoo-requirements"
    requirements = (tree / "requirements.txt").read_text()
    if not system and (not marker.exists() or marker.read_text() != requirements):
        # python-ldap and psycopg2 build from source: their headers, from Debian when root.
        headers = ["libldap2-dev", "libsasl2-dev", "libpq-dev"]
        missing = [p for p in headers if not dpkg_installed(p)]
        if missing:
            apt_install(missing, "to build Odoo's python-ldap and psycopg2")
        log = LOGS / "pip-odoo.log"
        say(f"installing Odoo's requirements.txt for Python {sys.version.split()[0]} (log: {log})")
        pip = [PY, "-m", "pip", "--disable-pip-version-check", "install", "-r"]
        if run([*pip, tree / "requirements.txt"], log, env=pip_env()).returncode:
            raise HarnessError(f"pip could not install Odoo's requirements: see {log}")
        marker.write_text(requirements)
    site = run([PY, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(last_line(site.stdout), "esd-odoo.pth").write_text(f"{tree}\n")
    if system:
        code = "import odoo.cli, odoo.addons.base.models.ir_qweb"
        probe = run([PY, "-c", code], env=odoo_env())
        if probe.returncode:
            raise HarnessError(f"Odoo needs {last_line(probe.stderr)}: install Debian's python3-*")


STACK_LIBRARIES = ("cryptography", "OpenSSL", "jwt", "msal", "requests", "urllib3", "psycopg2")


def describe_stack():
    """One line: the Python and the versions of the libraries it imports, and from where."""
    code = f"""import importlib, platform
parts = ["Python " + platform.python_version()]
for name in {list(STACK_LIBRARIES)!r}:
    try:
        module = importlib.import_module(name)
    except ImportError:
        parts.append(name + " missing")
        continue
    where = "Debian" if module.__file__.startswith("/usr/lib/python3/") else "pip"
    parts.append(f"{{name}} {{getattr(module, '__version__', '?').split()[0]}} ({{where}})")
print(", ".join(parts))"""
    probe = run([PY, "-c", code], env=odoo_env())
    return last_line(probe.stdout, f"unknown ({last_line(probe.stderr)})")


def link_addon(odoo_pkg):
    """Odoo's addons path: this checkout as .build/addons/microsoft_esd, then Odoo's own addons.

    The addon folder links each entry of the checkout but the hidden ones (.venv, .build, .git):
    Odoo's translation export walks the addons path following links, and would otherwise read the
    virtualenv's sources as the addon's and loop through .build."""
    folder = BUILD / "addons" / ADDON
    if folder.is_symlink():
        folder.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {entry.name for entry in ROOT.iterdir() if not entry.name.startswith(".")}
    for link in folder.iterdir():
        if link.name not in wanted or link.resolve() != ROOT / link.name:
            link.unlink()
    for name in wanted - {link.name for link in folder.iterdir()}:
        (folder / name).symlink_to(ROOT / name, target_is_directory=(ROOT / name).is_dir())
    own = [p for p in (odoo_pkg.parent / "addons", odoo_pkg / "addons") if (p / "sale").is_dir()]
    if not own:
        raise HarnessError(f"Odoo at {odoo_pkg} has no addons folder with sale in it")
    return f"{folder.parent},{own[0]}"


def sql(pg, query, db="postgres"):
    """(True, first value) or (False, why), connecting as Odoo does (.venv sees Odoo's psycopg2)."""
    import psycopg2  # noqa: PLC0415 - Odoo's dependency, present once Odoo was found

    options = {"host": pg["db_host"], "port": pg["db_port"], "user": pg["db_user"], "dbname": db}
    options.update(password=pg["db_password"] or None, connect_timeout=5)
    try:
        with contextlib.closing(psycopg2.connect(**options)) as conn, conn.cursor() as cr:
            cr.execute(query)
            return True, str((cr.fetchone() or [""])[0])
    except psycopg2.Error as exc:
        return False, " ".join(str(exc).split())


def find_server():
    """The server PGHOST, PGPORT, PGUSER, PGPASSWORD name (localhost:5432 as the current user by
    default) if it lets us in; None if it does not and none of them is set."""
    named = any(os.getenv(name) for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD"))
    host, port = os.getenv("PGHOST") or "localhost", os.getenv("PGPORT") or "5432"
    user, password = os.getenv("PGUSER") or getpass.getuser(), os.getenv("PGPASSWORD", "")
    pg = {"db_host": host, "db_port": port, "db_user": user, "db_password": password}
    ok, why = sql(pg, "SELECT 1")
    if ok:
        say(f"using PostgreSQL on {host}:{port} as {user}")
        return pg
    if named:
        fix = "check PGHOST, PGPORT, PGUSER, PGPASSWORD, or unset them for a private cluster"
        raise HarnessError(f"cannot use PostgreSQL on {host}:{port} as {user} ({why}): {fix}")
    say(f"PostgreSQL on {host}:{port} as {user}: {why}")
    say("using a private cluster instead (to use a server, set PGHOST, PGUSER, PGPASSWORD)")
    return None


def pg_bindir():
    """PostgreSQL's server programs (initdb, pg_ctl); Debian's package is installed when root."""
    pattern = "/usr/lib/postgresql/*/bin/initdb"
    found = glob.glob(pattern) or [shutil.which("initdb") or ""]
    if found == [""] and apt_install("postgresql", "for a private database server"):
        found = glob.glob(pattern)
    if any(found):
        return Path(max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p)])).parent
    fix = "sudo apt-get install -y postgresql" if shutil.which("apt-get") else "install PostgreSQL"
    raise HarnessError(f"no PostgreSQL server programs (initdb): run {fix}, or set PGHOST")


def private_cluster():
    """Our cluster in $TMPDIR: its own socket folder, no TCP port, so it never meets the machine's
    PostgreSQL; trust, no fsync; owned by postgres when we are root (PostgreSQL refuses root)."""
    bindir, owner = pg_bindir(), ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.gettempdir()) / f"microsoft_esd-pg-{KEY}"
    sock, pg_ctl = data / "socket", [*owner, bindir / "pg_ctl", "-D", data]
    if not (data / "PG_VERSION").exists():
        say(f"creating a private PostgreSQL cluster in {data}")
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700, parents=True)
        if owner:
            shutil.chown(data, "postgres", "postgres")
        options = "-U esd -A trust -E UTF8 --locale=C.UTF-8".split()
        initdb = run([*owner, bindir / "initdb", "-D", data, *options])
        if initdb.returncode:
            raise HarnessError(f"initdb failed: {last_line(initdb.stderr)}")
    run([*owner, "mkdir", "-p", sock])
    pg = {"db_host": str(sock), "db_port": "5432", "db_user": "esd", "db_password": ""}
    if run([*pg_ctl, "status"]).returncode == 0:
        say(f"using the private PostgreSQL already running in {data}")
        return pg
    options = f"-p 5432 -c listen_addresses='' -k {sock} -c fsync=off -c full_page_writes=off"
    if run([*pg_ctl, "-l", data / "server.log", "-w", "-o", options, "start"]).returncode:
        raise HarnessError(f"the private PostgreSQL did not start: see {data / 'server.log'}")
    say(f"started a private PostgreSQL in {data} (socket only)")
    atexit.register(say, "stopped the private PostgreSQL")
    atexit.register(run, [*pg_ctl, "-m", "fast", "stop"])
    return pg


def odoo_setup(name, **options):
    """Odoo's addons path, PostgreSQL and a configuration file, .build/<name>.conf."""
    odoo_pkg = find_odoo()
    addons, pg = link_addon(odoo_pkg), find_server() or private_cluster()
    options = {"addons_path": addons, "data_dir": BUILD / "data", **pg, **options}
    options.update(admin_passwd=secrets.token_urlsafe(16), list_db=False)
    options["db_password"] = options["db_password"] or False
    conf = BUILD / f"{name}.conf"
    conf.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
    odoo_bin = odoo_pkg.parent / "odoo-bin"
    cmd = [PY, odoo_bin] if odoo_bin.exists() else [PY, "-m", "odoo"]
    return SimpleNamespace(pg=pg, conf=conf, cmd=cmd)


def odoo(ctx, *args, sub=(), log=None, env=None, **kwargs):
    """odoo-bin [sub] -c <our configuration> args; the finished process."""
    return run([*ctx.cmd, *sub, "-c", ctx.conf, *args], log, env=odoo_env(**env or {}), **kwargs)


def odoo_install(ctx, db, modules, log, *args):
    """odoo-bin installing modules in db (more options in args), then stopping, or HarnessError."""
    if odoo(ctx, "-d", db, "-i", ",".join(modules), *args, "--stop-after-init", log=log).returncode:
        raise HarnessError(f"Odoo could not install {modules[0]}: {logscan.last_error(log)}")


def throwaway_db(ctx, prefix):
    """A database name; the database is dropped with its filestore at exit (`odoo-bin db drop`)."""
    db = f"{prefix}_{os.getpid()}"
    atexit.register(lambda: odoo(ctx, "drop", db, sub=["db"]))
    return db


def odoo_tests(ctx, db, modules, log, tags):
    """Odoo's runner installs modules in db and runs the tests that tags select; its exit code."""
    say(f"installing {','.join(modules)} in {db}, Odoo's runner, tests {tags} (log: {log})")
    with socket.socket() as sock:  # a free port for the tours, never that of a running make demo
        sock.bind(("127.0.0.1", 0))
        test = ["--test-enable", "--test-tags", tags, "--http-port", sock.getsockname()[1]]
    args = ["-d", db, "-i", ",".join(modules), *test, "--log-level=test", "--stop-after-init"]
    rc = odoo(ctx, *args, log=log).returncode
    for line in logscan.summary(log):
        print("  " + line)
    return rc


def pytest(args, python=PY, log=None, **kwargs):
    """pytest, its output shown and kept in log (.build/logs/pytest.log, by tee); its exit code."""
    tee = 'set -o pipefail; "${@:2}" 2>&1 | tee "$1"'
    LOGS.mkdir(parents=True, exist_ok=True)
    cmd = ["bash", "-c", tee, "-", log or LOGS / "pytest.log", python, "-m", "pytest", "-q", *args]
    return subprocess.run(list(map(str, cmd)), check=False, **kwargs).returncode


def pure_tests(pytest_args, python=PY, log=None, **kwargs):
    """The pure tests, from a folder outside the checkout that links only them: the checkout's
    __init__.py imports Odoo, and pytest would import it (any ancestor package) above tests/pure."""
    folder = Path(tempfile.gettempdir()) / f"microsoft_esd-pure-{KEY}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "pure").is_symlink():
        (folder / "pure").symlink_to(ROOT / "tests" / "pure", target_is_directory=True)
    paths = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=paths)
    args = f"-p no:odoo -p no:cacheprovider -c {os.devnull} --rootdir {folder} pure"
    args += " -W ignore::DeprecationWarning"
    return pytest([*args.split(), *pytest_args], python, log, cwd=folder, env=env, **kwargs)


def pure_tests_with(python, log):
    """The pure tests run by another Python, quietly: (exit code, pytest's closing line and
    the tests that failed)."""
    rc = pure_tests([], python, log, stdout=subprocess.DEVNULL)
    text = log.read_text()
    lines = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    summary = lines[-1].strip("= ") if lines else f"no result, see {log}"
    # a run whose log is gone (CI) still says which test failed
    failed = logscan.pytest_failures(text)
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    return rc, summary


def scan_logs(*logs):
    """1 and one error line if a log holds a secret (named by file:line, never shown), else 0."""
    leak = logscan.leak_report(log.relative_to(ROOT) for log in logs)
    if leak:
        print(f"[esd] ERROR: {leak}", file=sys.stderr, flush=True)
    return int(bool(leak))


def cmd_test_pure(args):
    """The pure package's tests only (no Odoo, no database)."""
    return pure_tests(args) or scan_logs(LOGS / "pytest.log")


def cmd_test(args):
    """Every test: Odoo's runner, then pytest (pure tests, pytest-odoo), then a secret scan.

    Odoo's runner installs the addon and runs its tests; pytest runs the pure tests and the Odoo
    tests again (pytest-odoo) on the same database; then the logs are scanned for secrets."""
    try:
        find_odoo()
    except HarnessError as exc:
        if os.environ.get("ESD_REQUIRE_ODOO") == "1":
            raise HarnessError(f"ESD_REQUIRE_ODOO=1 and {exc}") from None
        tests = sum(p.read_text().count("    def test_") for p in ROOT.glob("tests/test_*.py"))
        banner = "!" * 78 + "\n[esd] ODOO TESTS SKIPPED: {}\n" + "!" * 78
        print(banner.format(f"{tests} Odoo tests not run because {exc}"), flush=True)
        rc = pure_tests(args)
        print(banner.format(f"{tests} (see above); only the pure tests ran"), flush=True)
        return rc or scan_logs(LOGS / "pytest.log")
    say(f"stack {os.getenv('ESD_STACK', 'of this Python')}: {describe_stack()}")
    ensure_chromium()
    # No cron threads: the tests run the crons themselves (a background cron thread of
    # pytest-odoo's server would run them too, on the data a test commits).
    ctx = odoo_setup("odoo-test", max_cron_threads=0)
    db, log, initdb_log = throwaway_db(ctx, "esd_test"), LOGS / "odoo-test.log", LOGS / "initdb.log"
    depends = ast.literal_eval((ROOT / "__manifest__.py").read_text())["depends"]
    depends = ",".join([*depends, *extra_modules()])
    say(f"creating {db} with {depends} (click-odoo-initdb, cached; log: {initdb_log})")
    initdb = [PY.parent / "click-odoo-initdb", "-c", ctx.conf, "-n", db, "-m", depends]
    if run([*initdb, "--cache-prefix", "esd", "--cache-max-size", "3"], initdb_log).returncode:
        raise HarnessError(f"click-odoo-initdb failed: {logscan.last_error(initdb_log)}")
    tags = os.environ.get("ESD_TEST_TAGS") or f"/{ADDON}"
    rc = odoo_tests(ctx, db, [ADDON, *extra_modules()], log, tags)
    installed = f"SELECT state FROM ir_module_module WHERE name = '{ADDON}'"
    if sql(ctx.pg, installed, db) != (True, "installed"):
        raise HarnessError(f"Odoo could not install {ADDON}: {logscan.last_error(log)}")
    say("Odoo's test runner: " + ("passed" if rc == 0 else f"FAILED (exit {rc}), see {log}"))
    pure_log = LOGS / "pytest-pure.log"
    say(f"pytest: the pure tests (log: {pure_log})")
    rc_pure = pure_tests(args, log=pure_log)
    rc_pytest, logs = 0, [log, pure_log]
    if os.environ.get("ESD_PYTEST_ODOO", "1") == "0":
        say("pytest-odoo: not run (ESD_PYTEST_ODOO=0); Odoo's runner ran the Odoo tests above")
    else:
        say(f"pytest-odoo: the Odoo tests again (log: {LOGS / 'pytest.log'})")
        # From the link's parent: a cwd inside the link would resolve to the checkout's name.
        options = f"-p no:cacheprovider -c {ADDON}/pyproject.toml --rootdir={ADDON} --odoo-http"
        options += f" --odoo-database {db} --odoo-config {ctx.conf} --odoo-log-level critical"
        options += f" {ADDON}/tests --ignore={ADDON}/tests/pure"  # run above, not a package
        rc_pytest = pytest([*options.split(), *args], cwd=BUILD / "addons")
        logs.append(LOGS / "pytest.log")
    # With options that select tests (-k), one of the two runs may select none (exit 5).
    rcs = [code for code in (rc_pure, rc_pytest) if code != 5 or not args]
    return scan_logs(*logs) or max(rcs, default=0) or min(rc, 1)


def cmd_test_odoo(args):
    """Odoo's own post-install suites (ODOO_SUITES), with the addon unless WITHOUT_ADDON=1.

    A failure fails the run unless .ci/odoo-known-failures.txt lists it."""
    ensure_chromium()
    ctx = odoo_setup("odoo-suites")
    suites = (os.environ.get("ODOO_SUITES") or "sale sale_management portal account").split()
    without = os.environ.get("WITHOUT_ADDON", "0") not in ("", "0")
    modules = suites if without else [ADDON, *extra_modules(), *suites]
    db, log = throwaway_db(ctx, "esd_suites"), LOGS / "odoo-suites.log"
    rc = odoo_tests(ctx, db, modules, log, ",".join(f"post_install/{s}" for s in suites))
    known = ROOT / ".ci" / "odoo-known-failures.txt"
    failed = logscan.failing_tests(logscan.read(log))
    new = [test for test in failed if not logscan.is_known(test, logscan.read(known))]
    for test in failed:
        print(f"  {'FAILED' if test in new else 'known failure'}: {test}")
    if new:
        where = known.relative_to(ROOT)
        raise HarnessError(f"{len(new)} failed, not in {where}: {', '.join(new)} (log: {log})")
    if rc and not failed:
        raise HarnessError(f"Odoo's runner failed (exit {rc}): {logscan.last_error(log)}")
    say(f"Odoo's suites {' '.join(suites)}: no unexpected failure ({len(failed)} known)")
    return 0


def cmd_pot(args):
    """Exports i18n/microsoft_esd.pot with Odoo's translation export.

    From a throw-away database where the addon is installed with its demo data, as
    tests/test_i18n.py exports it to compare."""
    ctx = odoo_setup("odoo-pot")
    db, log, pot = (
        throwaway_db(ctx, "esd_pot"),
        LOGS / "odoo-pot.log",
        ROOT / "i18n" / f"{ADDON}.pot",
    )
    say(f"installing {ADDON} in {db} (log: {log})")
    odoo_install(ctx, db, [ADDON], log, "--no-http")
    pot.parent.mkdir(exist_ok=True)
    if odoo(
        ctx, "-d", db, f"--i18n-export={pot}", f"--modules={ADDON}", log=log, mode="a"
    ).returncode:
        raise HarnessError(f"the export failed: {logscan.last_error(log)}")
    say(f"wrote {pot.relative_to(ROOT)}")
    return 0


def start_simulator(state_dir, *args):
    """The CIS simulator in the background, stopped at exit; its instance.json."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config, log = state_dir / "instance.json", LOGS / "simulator.log"
    config.unlink(missing_ok=True)
    cmd = [PY, "-m", ADDON, "simulator", "--port", "0", "--state", state_dir, *args]
    with log.open("w") as out:
        proc = subprocess.Popen(list(map(str, cmd)), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 30
    while not config.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise HarnessError(f"the CIS simulator did not start: see {log}")
        time.sleep(0.1)
    return config


def odoo_shell(ctx, db, script, marker, **env):
    """What `odoo-bin shell` running script prints after marker, or HarnessError."""
    proc = odoo(ctx, "-d", db, "--no-http", sub=["shell"], input=script.read_text(), env=env)
    if os.environ.get("ESD_BENCH_PROFILE"):
        print(proc.stdout)
    found = [line for line in proc.stdout.splitlines() if line.startswith(marker)]
    if not found:
        raise HarnessError(f"{script.name} failed: {last_line(proc.stderr or proc.stdout)}")
    return found[0][len(marker) :]


def cmd_demo(args, db="esd_demo"):
    """Creates or updates the demo database, starts the simulator and serves Odoo on PORT."""
    port = int(os.environ.get("PORT") or 8069)
    ensure_wkhtmltopdf()
    ctx = odoo_setup("odoo-demo", dbfilter=f"^{db}$")
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        raise HarnessError(f"port {port} is in use (an earlier make demo?): make demo PORT=...")
    log = LOGS / "odoo-demo-setup.log"
    # -i installs what is missing (everything in a new database), -u updates the addon.
    say(f"creating or updating the demo database {db} (log: {log})")
    try:
        odoo_install(ctx, db, [ADDON, *extra_modules()], log, "-u", ADDON, "--no-http")
    except HarnessError as exc:
        raise HarnessError(f"no demo database, {exc}; make demo-reset drops it") from None
    sim = start_simulator(BUILD / "demo-simulator")
    say(f"CIS simulator running, client configuration in {sim}")
    out = odoo_shell(ctx, db, ROOT / "tools" / "demo_setup.py", "ESD-DEMO ", ESD_DEMO_CONFIG=sim)
    state, products, licenses, error = (out + " ").split(" ", 3)
    say(f"demo ESD instance: {state}, {products} products, {licenses} licenses sold {error}")
    print(
        f"""\n{"=" * 78}
  Microsoft ESD demo: http://127.0.0.1:{port}/web/login   (database {db})
  administrator: admin / admin        salesperson: demo / demo
  portal customer: portal / portal    portal reseller: reseller / reseller
  Sales > Microsoft ESD.  Simulator admin: .venv/bin/esd --config {sim}
  Stop with Ctrl-C.\n{"=" * 78}\n""",
        flush=True,
    )
    serve = f"-d {db} --http-interface 127.0.0.1 --http-port {port} --log-level warn"
    server = subprocess.Popen(list(map(str, [*ctx.cmd, "-c", ctx.conf, *serve.split()])))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.wait()
    if server.poll() is None:
        server.terminate()
        server.wait()
    return 0


def cmd_demo_reset(args, db="esd_demo"):
    """Drops the demo database and its filestore."""
    proc = odoo(odoo_setup("odoo-demo-reset"), "drop", db, sub=["db"])
    say(last_line(proc.stderr) if proc.returncode else f"dropped the demo database {db}")
    return 0


def run_tool(main):
    """Exit with main(argv)'s code; a foreseen failure is one "[esd] ERROR:" line, exit 2."""
    try:
        sys.exit(main(sys.argv[1:]))
    except HarnessError as exc:
        print(f"[esd] ERROR: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def main(argv):
    """make <command> runs `tools/devenv.py <command> [pytest options]`."""
    commands = {
        name[4:].replace("_", "-"): f for name, f in globals().items() if name[:4] == "cmd_"
    }
    if not argv or argv[0] not in commands:
        print(f"usage: devenv.py {{{','.join(commands)}}} [pytest options]", file=sys.stderr)
        for name, command in commands.items():
            print(f"  {name:11} {command.__doc__.split(chr(10))[0]}", file=sys.stderr)
        return 2
    if argv[1:] and argv[0] not in ("test", "test-pure"):
        print(f"[esd] ERROR: {argv[0]} takes no arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        rc = commands[argv[0]](argv[1:])
    except HarnessError as exc:
        print(f"[esd] ERROR: {exc}", file=sys.stderr, flush=True)
        return 2
    if argv[0] == "test":
        say(f"make test finished in {time.monotonic() - started:.0f}s with exit code {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
