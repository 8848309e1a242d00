#!/usr/bin/env python3
"""Development harness behind make test, make test-odoo, make demo and make bench.

One function per step: a virtualenv that sees the machine's site-packages; Odoo 18 (importable, or
ODOO_PATH); PostgreSQL (the server PGHOST/PGPORT name if it lets us in, else a private cluster);
this checkout exposed to Odoo as the addon microsoft_esd; then the run. Delegated: the test
database to click-odoo-initdb (and its cache of templates), dropping to `odoo-bin db drop`, tests
to Odoo's runner and pytest-odoo. A foreseen failure ends in one line "[esd] ERROR: ...".
Standard library only: it runs before the virtualenv exists.
"""

# A command-line harness: what it prints is what the user reads, not a log.
# pylint: disable=print-used

import argparse
import ast
import atexit
import contextlib
import fnmatch
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
BUILD, VENV, LOGS = ROOT / ".build", ROOT / ".venv", ROOT / ".build" / "logs"
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


def ensure_venv():
    """.venv, seeing the machine's site-packages; pip install -e .[test,lint] when pyproject
    changed."""
    py, stamp = VENV / "bin" / "python", VENV / ".esd-deps"
    if not py.exists() or run([py, "-c", ""]).returncode:
        say(f"creating virtualenv {VENV.name} (with the machine's site-packages)")
        shutil.rmtree(VENV, ignore_errors=True)
        venv = run([sys.executable, "-m", "venv", "--system-site-packages", VENV])
        if venv.returncode:
            raise HarnessError(f"python -m venv failed: {last_line(venv.stdout + venv.stderr)}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return py
    say("installing the Python dependencies (pip install -e .[test,lint])")
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-e", f"{ROOT}[test,lint]"]
    if run(pip, LOGS / "pip.log").returncode:
        raise HarnessError(f"pip could not install the dependencies: see {LOGS / 'pip.log'}")
    stamp.write_text(digest)
    return py


def apt_install(package, why):
    """Debian's package, installed when we are root on a machine with apt-get; whether it was."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    log, env = LOGS / f"apt-{package}.log", dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    say(f"installing {package} {why} (apt-get install {package}, log: {log})")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        if run(cmd, log, "a", env=env).returncode:
            say(f"apt-get could not install {package}: see {log}")
            return False
    return True


def ensure_chromium():
    """Odoo's tours need Chromium."""
    if any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        return
    if not apt_install("chromium", "for the tours"):
        say("Chromium is missing: the tours will be skipped (apt-get install chromium)")


def ensure_wkhtmltopdf():
    """Odoo prints PDFs with wkhtmltopdf: a paid shop order's confirmation email attaches one."""
    if not shutil.which("wkhtmltopdf") and not apt_install("wkhtmltopdf", "for Odoo's PDFs"):
        say("wkhtmltopdf is missing: shop orders cannot be confirmed (apt-get install wkhtmltopdf)")


def odoo_env(**extra):
    env, path = dict(os.environ, **{k: str(v) for k, v in extra.items()}), os.getenv("ODOO_PATH")
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    return env


def find_odoo(py):
    """The folder of the odoo package that Python imports (with ODOO_PATH), if it is 18.0."""
    path = os.environ.get("ODOO_PATH")
    if path and not (Path(path) / "odoo" / "__init__.py").is_file():
        raise HarnessError(f"ODOO_PATH={path} has no odoo/__init__.py; {ODOO_HOWTO}")
    code = "import json, odoo, odoo.release as r; print(json.dumps([r.version, *odoo.__path__]))"
    probe = run([py, "-c", code], env=odoo_env())
    if probe.returncode:
        raise HarnessError(f"Odoo is not importable ({last_line(probe.stderr)}); {ODOO_HOWTO}")
    version, pkg = json.loads(last_line(probe.stdout))[:2]
    if not version.startswith("18.0"):
        raise HarnessError(f"found Odoo {version} at {pkg}, this addon needs 18.0; {ODOO_HOWTO}")
    say(f"Odoo {version} found at {pkg}")
    return Path(pkg)


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


SQL = """import sys, psycopg2
try:
    cr = psycopg2.connect(dbname=sys.argv[1], connect_timeout=5).cursor()
    cr.execute(sys.argv[2])
    print(*(cr.fetchone() or [""]))
except psycopg2.Error as exc:
    sys.exit(" ".join(str(exc).split()))"""


def sql(py, pg, query, db="postgres"):
    """(True, first value) or (False, why), through psycopg2 as Odoo connects."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=pg["db_host"], PGPORT=pg["db_port"], PGUSER=pg["db_user"])
    env.update({"PGPASSWORD": pg["db_password"]} if pg["db_password"] else {})
    proc = run([py, "-c", SQL, db, query], env=env)
    return (False, last_line(proc.stderr)) if proc.returncode else (True, proc.stdout.strip())


def answers(host, port):
    if host.startswith("/"):
        return Path(host, f".s.PGSQL.{port}").exists()
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
        return True
    return False


def find_server(py):
    """The server PGHOST/PGPORT names (localhost:5432 by default) if it lets us in, or None."""
    host, port = os.getenv("PGHOST") or "localhost", os.getenv("PGPORT") or "5432"
    user, password = os.getenv("PGUSER"), os.getenv("PGPASSWORD", "")
    pg = {"db_host": host, "db_port": port, "db_user": user or getpass.getuser()}
    if not answers(host, port):
        say(f"no PostgreSQL answers on {host}:{port}")
        return None
    ok, why = sql(py, dict(pg, db_password=password), "SELECT 1")
    if ok:
        say(f"using PostgreSQL on {host}:{port} as {pg['db_user']}")
        return dict(pg, db_password=password)
    refused = f"PostgreSQL on {host}:{port} refused user '{pg['db_user']}' ({why})"
    if user or password:
        raise HarnessError(f"{refused}: check PGUSER/PGPASSWORD")
    say(refused)
    if host.startswith("/") or host in ("localhost", "127.0.0.1", "::1"):
        peer = dict(pg, db_host=peer_role(port, pg["db_user"]), db_password="")
        if peer["db_host"] and sql(py, peer, "SELECT 1")[0]:
            say(f"using PostgreSQL on {peer['db_host']} as {pg['db_user']} (peer authentication)")
            return peer
    say("using a private cluster instead (to use that server, set PGUSER/PGPASSWORD)")
    return None


def peer_role(port, user):
    """As root, a role for user (LOGIN CREATEDB) made through the postgres account's peer
    authentication; the server's socket folder, where user logs in by peer too, or None."""
    if os.geteuid() != 0 or not shutil.which("psql") or run(["id", "postgres"]).returncode:
        return None
    say(f"making sure the role '{user}' exists (LOGIN CREATEDB), as the postgres account")
    create = f"""DO $$BEGIN CREATE ROLE "{user}" LOGIN CREATEDB;
        EXCEPTION WHEN duplicate_object THEN ALTER ROLE "{user}" LOGIN CREATEDB; END$$"""
    psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-qtA", "-p", port, "-c", create]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    proc = run([*psql, "-c", "SHOW unix_socket_directories"], env=env, cwd="/")
    if proc.returncode:
        say(f"the postgres account could not: {last_line(proc.stderr)}")
    return None if proc.returncode else last_line(proc.stdout).split(",")[0].strip()


def pg_bindir():
    """PostgreSQL's server programs (initdb, pg_ctl); Debian's package is installed when root."""
    pattern = "/usr/lib/postgresql/*/bin/initdb"
    found = glob.glob(pattern) or [shutil.which("initdb") or ""]
    if found == [""] and apt_install("postgresql", "for a private database server"):
        found = glob.glob(pattern)
    if any(found):
        return Path(max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p)])).parent
    fix = "sudo apt-get install -y postgresql" if shutil.which("apt-get") else "install PostgreSQL"
    raise HarnessError(f"no usable PostgreSQL server and none installed: run {fix} (or PGHOST)")


def private_cluster():
    """Our cluster in $TMPDIR: socket only, trust, no fsync, owned by postgres when we are root."""
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


def odoo_setup(py, odoo_pkg, name, **options):
    """Odoo's addons path, PostgreSQL and a configuration file, .build/<name>.conf."""
    addons, pg = link_addon(odoo_pkg), find_server(py) or private_cluster()
    options = {"addons_path": addons, "data_dir": BUILD / "data", **pg, **options}
    options.update(admin_passwd=secrets.token_urlsafe(16), list_db=False)
    options["db_password"] = options["db_password"] or False
    conf = BUILD / f"{name}.conf"
    conf.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
    odoo_bin = odoo_pkg.parent / "odoo-bin"
    cmd = [py, odoo_bin] if odoo_bin.exists() else [py, "-m", "odoo"]
    return SimpleNamespace(py=py, pg=pg, conf=conf, cmd=cmd)


def odoo(ctx, *args, sub=(), log=None, env=None, **kwargs):
    """odoo-bin [sub] -c <our configuration> args; the finished process."""
    return run([*ctx.cmd, *sub, "-c", ctx.conf, *args], log, env=odoo_env(**env or {}), **kwargs)


def odoo_install(ctx, db, modules, log, *args):
    """odoo-bin installing modules in db (more options in args), then stopping; its exit code."""
    return odoo(ctx, "-d", db, "-i", ",".join(modules), *args, "--stop-after-init", log=log)


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
    rc = odoo_install(ctx, db, modules, log, *test, "--log-level=test").returncode
    for line in logscan.summary(log):
        print("  " + line)
    return rc


def pytest(py, args, **kwargs):
    """pytest, its output printed as it comes and kept in .build/logs/pytest.log; its exit code."""
    cmd = [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, args)]
    with (LOGS / "pytest.log").open("wb") as log:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs) as p:
            while chunk := p.stdout.read1(65536):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                log.write(chunk)
    return p.returncode


def pure_tests(py, pytest_args):
    """The pure tests, from a folder outside the checkout that links only them: the checkout's
    __init__.py imports Odoo, and pytest would import it (any ancestor package) above tests/pure."""
    folder = Path(tempfile.gettempdir()) / f"microsoft_esd-pure-{KEY}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "pure").is_symlink():
        (folder / "pure").symlink_to(ROOT / "tests" / "pure", target_is_directory=True)
    paths = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=paths)
    args = f"-p no:odoo -c {os.devnull} --rootdir {folder} -W ignore::DeprecationWarning pure"
    return pytest(py, [*args.split(), *pytest_args], cwd=folder, env=env)


def scan_logs(*logs):
    """1 and one error line if a log holds a secret (named by file:line, never shown), else 0."""
    leak = logscan.leak_report(log.relative_to(ROOT) for log in logs)
    if leak:
        print(f"[esd] ERROR: {leak}", file=sys.stderr, flush=True)
    return int(bool(leak))


def cmd_test_pure(args):
    return pure_tests(ensure_venv(), args.pytest_args) or scan_logs(LOGS / "pytest.log")


def cmd_test(args):
    """Odoo's runner installs the addon and runs its tests, then pytest runs the pure tests and the
    Odoo tests again (pytest-odoo) on the same database; then the logs are scanned for secrets."""
    py = ensure_venv()
    try:
        odoo_pkg = find_odoo(py)
    except HarnessError as exc:
        if os.environ.get("ESD_REQUIRE_ODOO") == "1":
            raise HarnessError(f"ESD_REQUIRE_ODOO=1 and {exc}") from None
        tests = sum(p.read_text().count("    def test_") for p in ROOT.glob("tests/test_*.py"))
        banner = "!" * 78 + "\n[esd] ODOO TESTS SKIPPED: {}\n" + "!" * 78
        print(banner.format(f"{tests} Odoo tests not run because {exc}"), flush=True)
        rc = pure_tests(py, args.pytest_args)
        print(banner.format(f"{tests} (see above); only the pure tests ran"), flush=True)
        return rc or scan_logs(LOGS / "pytest.log")
    ensure_chromium()
    ctx = odoo_setup(py, odoo_pkg, "odoo-test")
    db, log, initdb_log = throwaway_db(ctx, "esd_test"), LOGS / "odoo-test.log", LOGS / "initdb.log"
    depends = ast.literal_eval((ROOT / "__manifest__.py").read_text())["depends"]
    depends = ",".join([*depends, *extra_modules()])
    say(f"creating {db} with {depends} (click-odoo-initdb, cached; log: {initdb_log})")
    initdb = [VENV / "bin" / "click-odoo-initdb", "-c", ctx.conf, "-n", db, "-m", depends]
    if run([*initdb, "--cache-prefix", "esd", "--cache-max-size", "3"], initdb_log).returncode:
        raise HarnessError(f"click-odoo-initdb failed: {logscan.last_error(initdb_log)}")
    tags = os.environ.get("ESD_TEST_TAGS") or f"/{ADDON}"
    rc = odoo_tests(ctx, db, [ADDON, *extra_modules()], log, tags)
    installed = f"SELECT state FROM ir_module_module WHERE name = '{ADDON}'"
    if sql(py, ctx.pg, installed, db) != (True, "installed"):
        raise HarnessError(f"Odoo could not install {ADDON}: {logscan.last_error(log)}")
    say("Odoo's test runner: " + ("passed" if rc == 0 else f"FAILED (exit {rc}), see {log}"))
    # From the link's parent: a cwd inside the link would resolve to the checkout's real name.
    options = f"-c {ADDON}/pyproject.toml --rootdir={ADDON} --odoo-database {db} --odoo-http"
    options += f" --odoo-config {ctx.conf} --odoo-log-level critical {ADDON}/tests"
    rc_pytest = pytest(py, [*options.split(), *args.pytest_args], cwd=BUILD / "addons")
    return scan_logs(log, LOGS / "pytest.log") or rc_pytest or min(rc, 1)


def cmd_test_odoo(args):
    """Odoo's own post-install suites with the addon installed (or not), against known failures."""
    py = ensure_venv()
    ctx = odoo_setup(py, find_odoo(py), "odoo-suites")
    ensure_chromium()
    suites = args.suites.replace(",", " ").split()
    modules = suites if args.without_addon else [ADDON, *extra_modules(), *suites]
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


def cmd_lint(args):
    """ruff, pylint-odoo with OCA's configuration (.pylintrc), OCA's module and .po checks: the
    versions .pre-commit-config.yaml pins, run from .venv (no clone, no network); any message
    fails."""
    py, bin_ = ensure_venv(), VENV / "bin"
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT)
    files = [f for f in listed.stdout.splitlines() if (ROOT / f).is_file()]
    if listed.returncode:  # not a git checkout
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
        files = [f for f in files if not f.startswith((".venv", ".build", ".git"))]
    steps = {
        "ruff check": [py, "-m", "ruff", "check", "."],
        "ruff format": [py, "-m", "ruff", "format", "--check", "."],
        "pylint-odoo": [py, "-m", "pylint", "--rcfile=.pylintrc", *fnmatch.filter(files, "*.py")],
        "oca-checks-odoo-module": [bin_ / "oca-checks-odoo-module", "__manifest__.py"],
        "oca-checks-po": [bin_ / "oca-checks-po", *fnmatch.filter(files, "i18n/*.po*")],
    }
    if not fnmatch.filter(files, "i18n/*.po*"):
        del steps["oca-checks-po"]
    failed = [
        name
        for name, cmd in steps.items()
        if subprocess.run(list(map(str, cmd)), cwd=ROOT, check=False).returncode
    ]
    if failed:
        raise HarnessError(f"lint: {', '.join(failed)} reported problems (see above)")
    say(f"lint: {', '.join(steps)}: no message")
    return 0


def cmd_pot(args):
    """i18n/microsoft_esd.pot, exported by Odoo (--i18n-export) from a throw-away database where the
    addon is installed with its demo data, as tests/test_i18n.py exports it to compare."""
    py = ensure_venv()
    ctx = odoo_setup(py, find_odoo(py), "odoo-pot")
    db, log = throwaway_db(ctx, "esd_pot"), LOGS / "odoo-pot.log"
    pot = ROOT / "i18n" / f"{ADDON}.pot"
    say(f"installing {ADDON} in {db} (log: {log})")
    if odoo_install(ctx, db, [ADDON], log, "--no-http").returncode:
        raise HarnessError(f"Odoo could not install {ADDON}: {logscan.last_error(log)}")
    pot.parent.mkdir(exist_ok=True)
    export = odoo(ctx, "-d", db, f"--i18n-export={pot}", f"--modules={ADDON}", log=log, mode="a")
    if export.returncode:
        raise HarnessError(f"the export failed: {logscan.last_error(log)}")
    say(f"wrote {pot.relative_to(ROOT)}")
    return 0


def start_simulator(py, state_dir, *args):
    """The CIS simulator in the background, stopped at exit; its instance.json."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config, log = state_dir / "instance.json", LOGS / "simulator.log"
    config.unlink(missing_ok=True)
    cmd = [py, "-m", ADDON, "simulator", "--port", "0", "--state", state_dir, *args]
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


def cmd_demo(args):
    py, db, modules = ensure_venv(), args.database, [ADDON, *extra_modules()]
    ensure_wkhtmltopdf()
    ctx = odoo_setup(py, find_odoo(py), "odoo-demo", dbfilter=f"^{db}$")
    if answers("127.0.0.1", args.port):
        raise HarnessError(
            f"port {args.port} is in use (an earlier make demo?): make demo PORT=..."
        )
    log = LOGS / "odoo-demo-setup.log"
    # -i installs what is missing (everything in a new database), -u updates the addon.
    say(f"creating or updating the demo database {db} (log: {log})")
    if odoo_install(ctx, db, modules, log, "-u", ADDON, "--no-http").returncode:
        raise HarnessError(f"no demo database: {logscan.last_error(log)}; make demo-reset drops it")
    sim = start_simulator(py, BUILD / "demo-simulator")
    say(f"CIS simulator running, client configuration in {sim}")
    out = odoo_shell(ctx, db, ROOT / "tools" / "demo_setup.py", "ESD-DEMO ", ESD_DEMO_CONFIG=sim)
    state, products, licenses, error = (out + " ").split(" ", 3)
    say(f"demo ESD instance: {state}, {products} products, {licenses} licenses sold {error}")
    print(
        f"""\n{"=" * 78}
  Microsoft ESD demo: http://127.0.0.1:{args.port}/web/login   (database {db})
  administrator: admin / admin        salesperson: demo / demo
  portal customer: portal / portal    portal reseller: reseller / reseller
  Sales > Microsoft ESD.  Simulator admin: .venv/bin/esd --config {sim}
  Stop with Ctrl-C.\n{"=" * 78}\n""",
        flush=True,
    )
    serve = f"-d {db} --http-interface 127.0.0.1 --http-port {args.port} --log-level warn"
    server = subprocess.Popen(list(map(str, [*ctx.cmd, "-c", ctx.conf, *serve.split()])))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.wait()
    if server.poll() is None:
        server.terminate()
        server.wait()
    return 0


def cmd_demo_reset(args):
    py = ensure_venv()
    proc = odoo(odoo_setup(py, find_odoo(py), "odoo-demo-reset"), "drop", args.database, sub=["db"])
    say(last_line(proc.stderr) if proc.returncode else f"dropped the demo database {args.database}")
    return 0


BENCHES = ("orders", "catalog", "provisioning", "scaleout", "refresh", "lists", "memory")


def cmd_bench(args):
    """The benchmarks of docs/benchmarks.md (they print figures; they assert nothing).

    --only (or make bench BENCH=...) picks some, comma-separated: orders, catalog, provisioning,
    scaleout, refresh, lists, memory (= catalog with 5,000 products and a 1,000-license order,
    each with its peak resident memory).
    """
    py, profile = ensure_venv(), os.environ.get("ESD_BENCH_PROFILE")
    only = set(filter(None, (args.only or os.environ.get("BENCH") or "").split(",")))
    if only - set(BENCHES):
        raise HarnessError(
            f"unknown benchmark {', '.join(sorted(only - set(BENCHES)))}: "
            f"choose among {', '.join(BENCHES)}"
        )
    chosen = only or set(BENCHES) - {"memory"}  # the catalog and provisioning runs report memory
    if profile:
        chosen = {"provisioning"}
    if "memory" in chosen:
        chosen |= {"catalog", "provisioning"}
        args.products, args.licenses = max(args.products, 5000), max(args.licenses, 1000)
    if "orders" in chosen:
        say("CIS client: 200 orders with 50 ms latency, sequential and 8 in parallel")
        if subprocess.run([py, ROOT / "bench" / "bench_orders.py"], check=False).returncode:
            raise HarnessError("the benchmark bench_orders.py failed (see above)")
    if not chosen - {"orders"}:
        return 0
    ctx = odoo_setup(py, find_odoo(py), "odoo-bench")
    db, log = throwaway_db(ctx, "esd_bench"), LOGS / "odoo-bench.log"
    if chosen & {"catalog", "provisioning", "refresh"}:  # the others make their own database
        say(f"installing {ADDON} in {db} (log: {log})")
        if odoo_install(ctx, db, [ADDON], log, "--without-demo=all", "--no-http").returncode:
            raise HarnessError(f"Odoo could not install {ADDON}: {logscan.last_error(log)}")

    def bench(script, products, **env):
        sim_dir = Path(tempfile.mkdtemp(prefix="esd-bench-sim-"))
        sim = start_simulator(py, sim_dir, "--extra-products", products)
        out = odoo_shell(
            ctx, db, ROOT / "bench" / script, "ESD-BENCH ", ESD_BENCH_CONFIG=sim, **env
        )
        report = json.loads(out)
        print(json.dumps(report, indent=2), flush=True)
        return report

    def cluster_bench(script, *script_args, **env):
        """A bench/ script driving real odoo-bin processes (bench/cluster.py) on its own db."""
        cluster_db = throwaway_db(ctx, f"esd_bench_{script[6:-3]}")
        say(f"installing {ADDON} in {cluster_db} (log: {log})")
        if odoo_install(
            ctx, cluster_db, [ADDON], log, "--without-demo=all", "--no-http"
        ).returncode:
            raise HarnessError(f"Odoo could not install {ADDON}: {logscan.last_error(log)}")
        env = odoo_env(
            ESD_ODOO_CMD=json.dumps(list(map(str, ctx.cmd))),
            ESD_ODOO_CONF=ctx.conf,
            ESD_DB=cluster_db,
            **env,
        )
        cmd = [py, ROOT / "bench" / script, *script_args]
        if subprocess.run(list(map(str, cmd)), env=env, cwd=ROOT, check=False).returncode:
            raise HarnessError(f"the benchmark {script} failed (see above)")

    def memory(report, what):
        mib = report["peak_rss_mib"]
        verdict = "met" if mib <= 512 else f"MISSED by {mib - 512} MiB"
        say(f"{what}: peak resident memory {mib} MiB (bound <= 512 MiB: {verdict})")

    if "catalog" in chosen:
        say(f"catalog sync of {args.products} active products: first, then unchanged")
        memory(bench("bench_catalog_sync.py", args.products - 13), "catalog sync")
    if "provisioning" in chosen:
        say(f"provisioning {args.licenses // 4} then {args.licenses} licenses, 100 ms per order")
        report = bench("bench_provisioning.py", 0, ESD_BENCH_LICENSES=args.licenses)
        for run_ in report["runs"]:
            n, ratio = run_["licenses"], run_["ratio_to_bound"]
            per = run_["sql_queries_per_license"]
            say(
                f"{n} licenses: confirmation to posted invoice {run_['confirm_to_invoice_s']} s, "
                f"{ratio}x N x L / P (bound <= 1.3x: {'met' if ratio <= 1.3 else 'MISSED'}); "
                f"{per} SQL queries a license (bound <= 12: {'met' if per <= 12 else 'MISSED'}); "
                f"emails {run_['email_ms_per_license']} ms a license (bound <= 5 ms: "
                f"{'met' if run_['email_ms_per_license'] <= 5 else 'MISSED'})"
            )
        memory(report, f"order of {args.licenses} licenses")
    if "refresh" in chosen:
        say("status refresh: 10,000 delivered licenses, 1,000 changed at Microsoft")
        runs = bench("bench_refresh.py", 0)["runs"]
        small, large = runs[2], runs[5]
        verdict = "met" if large["wall_s"] <= 30 else f"MISSED by {large['wall_s'] - 30:.1f} s"
        say(
            f"refresh of {large['unchanged']} unchanged + {large['changed']} changed: "
            f"{large['wall_s']} s (bound <= 30 s: {verdict})"
        )
        say(
            f"SQL queries: {small['sql_queries']} at {small['unchanged']} unchanged, "
            f"{large['sql_queries']} at {large['unchanged']} unchanged, same {small['changed']} "
            f"changed (bound: equal up to the pages of the CIS answer)"
        )
    if "lists" in chosen:
        say("lists at volume: portal /my/esd at 50 and 5,000 licenses, backend list at 50,000")
        sim = start_simulator(py, Path(tempfile.mkdtemp(prefix="esd-bench-sim-")))
        cluster_bench("bench_lists.py", ESD_SIM_CONFIG=sim)
    if "scaleout" in chosen:
        say("scale-out: 2,000 licenses, 100 ms per order, 1, 2 and 4 Odoo servers, then limited")
        cluster_bench("bench_scaleout.py", *args.bench_args)
    return 0


def cmd_soak(args):
    """bench/soak.py on a throw-away database: real Odoo servers, faults, kill -9."""
    py = ensure_venv()
    ctx = odoo_setup(py, find_odoo(py), "odoo-soak")
    db, log = throwaway_db(ctx, "esd_soak"), LOGS / "odoo-soak.log"
    say(f"installing {ADDON} in {db} (log: {log})")
    if odoo_install(ctx, db, [ADDON], log, "--without-demo=all", "--no-http").returncode:
        raise HarnessError(f"Odoo could not install {ADDON}: {logscan.last_error(log)}")
    sim = start_simulator(py, Path(tempfile.mkdtemp(prefix="esd-soak-sim-")))
    env = odoo_env(
        ESD_ODOO_CMD=json.dumps(list(map(str, ctx.cmd))),
        ESD_ODOO_CONF=ctx.conf,
        ESD_DB=db,
        ESD_SIM_CONFIG=sim,
    )
    script = [py, ROOT / "bench" / "soak.py", *args.pytest_args]
    return subprocess.run(list(map(str, script)), env=env, cwd=ROOT, check=False).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("test", help="every test: the pure ones and Odoo's (Odoo's runner, pytest)")
    sub.add_parser("test-pure", help="the pure package's tests only (no Odoo, no database)")
    suites = sub.add_parser("test-odoo", help="Odoo's own post-install suites, with the addon")
    suites.add_argument("--suites", default="sale sale_management portal account website_sale")
    suites.add_argument("--without-addon", action="store_true", help="only the suites' modules")
    for name in ("demo", "demo-reset"):
        demo = sub.add_parser(name, help="serve the demo database" if name == "demo" else "drop it")
        demo.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8069")))
        demo.add_argument("--database", default="esd_demo")
    sub.add_parser("lint", help="ruff, pylint-odoo (OCA's configuration), OCA's module checks")
    sub.add_parser("pot", help="export i18n/microsoft_esd.pot with Odoo's translation export")
    sub.add_parser("soak", help="bench/soak.py: provisioning and returns under faults, kill -9")
    bench = sub.add_parser("bench", help="the benchmarks of docs/benchmarks.md")
    bench.add_argument("--products", type=int, default=5000)
    bench.add_argument("--licenses", type=int, default=200)
    bench.add_argument("--only", help=f"comma-separated, among {', '.join(BENCHES)} (or BENCH=)")
    bench.add_argument(
        "--scaleout-args",
        dest="bench_args",
        default="",
        type=str.split,
        help='options of bench/bench_scaleout.py, e.g. "--servers 1,2 --rate-limit 80"',
    )
    args, args.pytest_args = parser.parse_known_args(argv)
    if args.pytest_args and args.command not in ("test", "test-pure", "soak"):
        parser.error(f"unrecognized arguments: {' '.join(args.pytest_args)}")
    started = time.monotonic()
    try:
        rc = globals()["cmd_" + args.command.replace("-", "_")](args)
    except HarnessError as exc:
        print(f"[esd] ERROR: {exc}", file=sys.stderr, flush=True)
        return 2
    if args.command == "test":
        say(f"make test finished in {time.monotonic() - started:.0f}s with exit code {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
