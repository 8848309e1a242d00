#!/usr/bin/env python3
"""Development harness behind ``make test`` and ``make demo``.

It prepares a virtualenv that sees the machine's site-packages, finds Odoo 18 (``import odoo`` or
``ODOO_PATH``), finds or starts PostgreSQL, exposes this checkout to Odoo under the addon name
``microsoft_esd`` and then runs the tests or the demo server. Every failure it can foresee ends in
one line that says what is wrong and what to do.

Standard library only: it runs before the virtualenv exists.
"""

import argparse
import atexit
import contextlib
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

ROOT = Path(__file__).resolve().parent.parent
ADDON = "microsoft_esd"
BUILD = ROOT / ".build"
VENV = ROOT / ".venv"
LOGS = BUILD / "logs"


class HarnessError(Exception):
    """A foreseen failure: its message is the one line shown to the user."""


def say(msg):
    print(f"[esd] {msg}", flush=True)


def run(cmd, check=True, **kwargs):
    proc = subprocess.run(cmd, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise HarnessError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}")
    return proc


# --------------------------------------------------------------------------- virtualenv


def venv_python():
    return VENV / "bin" / "python"


def ensure_venv():
    """Create or reuse .venv (with the machine's site-packages) and install our dependencies."""
    py = venv_python()
    if py.exists():
        probe = run([str(py), "-c", "import sys"], check=False, capture_output=True)
        if probe.returncode != 0:
            say(f"the virtualenv {VENV} is broken; recreating it")
            shutil.rmtree(VENV)
    if not py.exists():
        say(f"creating virtualenv {VENV.name} (with the machine's site-packages)")
        run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)])
    stamp = VENV / ".esd-deps"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return py
    say("installing the Python dependencies (pip install -e .[test])")
    log = LOGS / "pip.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = run(
            [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-e", f"{ROOT}[test]"],
            check=False,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        raise HarnessError(
            f"pip could not install the dependencies: see {log} (is PyPI reachable?)"
        )
    stamp.write_text(digest)
    return py


# --------------------------------------------------------------------------- Odoo


def odoo_env():
    env = dict(os.environ)
    odoo_path = os.environ.get("ODOO_PATH")
    if odoo_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [odoo_path, env.get("PYTHONPATH")]))
    return env


def find_odoo(py):
    """Return (version, odoo package dir) or raise HarnessError with the reason."""
    odoo_path = os.environ.get("ODOO_PATH")
    if odoo_path and not (Path(odoo_path) / "odoo" / "__init__.py").exists():
        raise HarnessError(
            f"ODOO_PATH={odoo_path} is not an Odoo source tree (no odoo/__init__.py in it)"
        )
    probe = run(
        [
            str(py),
            "-c",
            "import json, odoo, odoo.release as r;"
            "print(json.dumps([r.version_info[0], r.version, odoo.__path__[0]]))",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=odoo_env(),
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise HarnessError(
            f"Odoo 18 is not importable ({last}). Install Odoo 18.0 into this Python "
            "(pip install of an Odoo 18.0 source tree) or set ODOO_PATH to an Odoo 18.0 source tree"
        )
    major, version, pkg = json.loads(probe.stdout.strip().splitlines()[-1])
    if major != 18:
        raise HarnessError(f"found Odoo {version} at {pkg}, but this addon needs Odoo 18.0")
    return version, Path(pkg)


def addons_path(odoo_pkg):
    """The checkout exposed as ``microsoft_esd`` plus Odoo's own addons folders."""
    link_dir = BUILD / "addons"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / ADDON
    if link.is_symlink() and link.resolve() != ROOT:
        link.unlink()
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    paths = [link_dir]
    for candidate in (odoo_pkg.parent / "addons", odoo_pkg / "addons"):
        if (candidate / "sale_management").is_dir():
            paths.append(candidate)
            break
    else:
        raise HarnessError(f"Odoo at {odoo_pkg} has no addons folder with sale_management")
    return ",".join(str(p) for p in paths)


def odoo_command(py, odoo_pkg):
    odoo_bin = odoo_pkg.parent / "odoo-bin"
    if odoo_bin.exists():
        return [str(py), str(odoo_bin)]
    return [str(py), "-m", "odoo"]


# --------------------------------------------------------------------------- PostgreSQL


def _tcp_answers(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """Connection settings for Odoo; starts a private cluster when nothing answers."""

    def __init__(self):
        self.host = os.environ.get("PGHOST", "localhost")
        self.port = int(os.environ.get("PGPORT", "5432"))
        self.user = os.environ.get("PGUSER") or getpass.getuser()
        self.password = os.environ.get("PGPASSWORD", "")
        self.started = None  # data dir of a cluster we started

    # The private cluster lives outside the checkout (postgres must own it) and is keyed by it.
    @property
    def private_dir(self):
        key = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"microsoft_esd-pg-{key}"

    def _as_owner(self, cmd):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def ensure(self, keep_running=False):
        if not self.host.startswith("/") and _tcp_answers(self.host, self.port):
            self._check_login()
            say(f"using PostgreSQL on {self.host}:{self.port} as {self.user}")
            return self
        self._start_private(keep_running)
        return self

    def _check_login(self):
        proc = self.psql("SELECT 1", check=False)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
            raise HarnessError(
                f"PostgreSQL on {self.host}:{self.port} refused user '{self.user}' ({reason}); "
                "set PGUSER/PGPASSWORD to a role that may create databases, or stop that server "
                "so that a private one is started"
            )

    def _start_private(self, keep_running):
        bindir = _pg_bindir()
        if not bindir:
            raise HarnessError(
                "no PostgreSQL answers on localhost and none is installed: "
                "install it (apt-get install postgresql) or start one and set PGHOST/PGPORT"
            )
        if (
            os.geteuid() == 0
            and run(["id", "postgres"], check=False, capture_output=True).returncode
        ):
            raise HarnessError(
                "running as root but there is no 'postgres' system user to own a cluster"
            )
        data = self.private_dir
        sock = data / "socket"
        log = data / "server.log"
        self.host, self.port, self.user, self.password = str(sock), 5432, "esd", ""
        if not (data / "PG_VERSION").exists():
            say(f"no PostgreSQL on localhost: creating a private cluster in {data}")
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(mode=0o700, parents=True)
            if os.geteuid() == 0:
                shutil.chown(data, "postgres", "postgres")
            proc = run(
                self._as_owner(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "esd",
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                check=False,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise HarnessError(f"initdb failed: {proc.stderr.strip().splitlines()[-1:]}")
        sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(sock, "postgres", "postgres")
        status = run(
            self._as_owner([str(bindir / "pg_ctl"), "-D", str(data), "status"]),
            check=False,
            capture_output=True,
        )
        if status.returncode == 0:
            say(f"using the private PostgreSQL already running in {data}")
            return
        options = f"-p 5432 -c listen_addresses='' -k {sock} -c fsync=off -c full_page_writes=off"
        proc = run(
            self._as_owner(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ]
            ),
            check=False,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise HarnessError(f"the private PostgreSQL did not start: see {log}")
        say(f"started a private PostgreSQL in {data}")
        self.started = (bindir, data)
        if not keep_running:
            atexit.register(self.stop)

    def stop(self):
        if self.started:
            bindir, data = self.started
            run(
                self._as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                check=False,
                capture_output=True,
            )
            say("stopped the private PostgreSQL")
            self.started = None

    def env(self):
        env = dict(os.environ, PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def psql(self, sql, dbname="postgres", check=True):
        psql = shutil.which("psql") or str((_pg_bindir() or Path("/usr/bin")) / "psql")
        return run(
            [psql, "-X", "-q", "-tA", "-d", dbname, "-c", sql],
            check=check,
            capture_output=True,
            text=True,
            env=self.env(),
        )

    def database_exists(self, name):
        out = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").stdout
        return out.strip() == "1"

    def drop_database(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)

    def odoo_options(self):
        opts = {"db_host": self.host, "db_port": str(self.port), "db_user": self.user}
        opts["db_password"] = self.password or "False"
        return opts


# --------------------------------------------------------------------------- Odoo config


def write_config(name, pg, addons, extra=None):
    BUILD.mkdir(exist_ok=True)
    options = {
        "addons_path": addons,
        "data_dir": str(BUILD / "data"),
        "admin_passwd": secrets.token_urlsafe(16),
        "list_db": "False",
        **pg.odoo_options(),
        **(extra or {}),
    }
    path = BUILD / f"{name}.conf"
    path.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
    return path


def _count_odoo_tests():
    """Odoo test methods in tests/*.py (used to say how many were skipped without Odoo)."""
    count = 0
    for path in (ROOT / "tests").glob("test_*.py"):
        count += len(re.findall(r"^\s+def test_\w+\(", path.read_text(), re.M))
    return count


def _last_error(log):
    """The last line of an Odoo log that names an error, to quote in a one-line message."""
    pattern = re.compile(r" (ERROR|CRITICAL) |Error:|Exception:")
    lines = [
        line.strip()
        for line in log.read_text(errors="replace").splitlines()
        if pattern.search(line)
    ]
    return lines[-1][:300] if lines else "no error line in the log"


def _odoo_log_summary(log):
    """The lines of an Odoo log worth showing: errors and the test statistics."""
    keep = re.compile(
        r" (ERROR|CRITICAL) |tests when loading database|post-tests in|failed, \d+ error"
    )
    lines = [
        line.rstrip() for line in log.read_text(errors="replace").splitlines() if keep.search(line)
    ]
    return lines


# --------------------------------------------------------------------------- commands


def run_pure_tests(pytest_base, extra):
    """The pure tests alone, without Odoo.

    The repository root is an addon whose ``__init__.py`` imports Odoo; pytest would import it as a
    package above ``tests/pure``. So the pure tests run from a folder that links only them.
    """
    # Outside the checkout: any ancestor holding an __init__.py would become a package too.
    key = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    folder = Path(tempfile.gettempdir()) / f"microsoft_esd-pure-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "pure"
    if not link.is_symlink():
        link.symlink_to(ROOT / "tests" / "pure", target_is_directory=True)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return run(
        [
            *pytest_base,
            "-p",
            "no:odoo",
            "-c",
            os.devnull,
            "--rootdir",
            str(folder),
            "-W",
            "ignore::DeprecationWarning",
            "pure",
            *extra,
        ],
        check=False,
        cwd=folder,
        env=env,
    )


def cmd_test_pure(args):
    py = ensure_venv()
    return run_pure_tests(
        [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider"], args.pytest_args
    ).returncode


def ensure_chromium():
    """Odoo's tours need Chromium; install Debian's package when missing (as root)."""
    if any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("Chromium is missing: the portal tour will be skipped (apt-get install chromium)")
        return
    say("installing Chromium for the portal tour (apt-get install chromium)")
    log = LOGS / "apt-chromium.log"
    with log.open("w") as out:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            if run(cmd, check=False, stdout=out, stderr=subprocess.STDOUT, env=env).returncode:
                say(f"could not install Chromium (see {log}): the portal tour will be skipped")
                return


def cmd_test(args):
    require = os.environ.get("ESD_REQUIRE_ODOO") == "1"
    py = ensure_venv()
    pytest_base = [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    try:
        version, odoo_pkg = find_odoo(py)
    except HarnessError as exc:
        skipped = _count_odoo_tests()
        if require:
            raise HarnessError(f"ESD_REQUIRE_ODOO=1 and {exc}") from None
        banner = "!" * 78
        print(banner)
        say(f"ODOO TESTS SKIPPED: {skipped} Odoo tests not run because {exc}")
        print(banner, flush=True)
        proc = run_pure_tests(pytest_base, args.pytest_args)
        print(banner)
        say(f"ODOO TESTS SKIPPED: {skipped} (see above); only the pure tests ran")
        print(banner, flush=True)
        return proc.returncode
    say(f"Odoo {version} found at {odoo_pkg}")
    addons = addons_path(odoo_pkg)
    LOGS.mkdir(parents=True, exist_ok=True)
    ensure_chromium()
    pg = Postgres().ensure()
    db = f"esd_test_{os.getpid()}"
    conf = write_config("odoo-test", pg, addons)
    LOGS.mkdir(parents=True, exist_ok=True)
    atexit.register(
        lambda: (
            pg.drop_database(db),
            shutil.rmtree(BUILD / "data" / "filestore" / db, ignore_errors=True),
        )
    )
    # 1. Odoo's own runner: installs the addon and runs its at_install and post_install tests.
    log = LOGS / "odoo-test.log"
    say(f"installing {ADDON} in database {db} and running Odoo's test runner (log: {log})")
    with log.open("w") as out:
        proc = run(
            [
                *odoo_command(py, odoo_pkg),
                "-c",
                str(conf),
                "-d",
                db,
                "-i",
                ADDON,
                "--test-enable",
                "--test-tags",
                f"/{ADDON}",
                "--stop-after-init",
                "--log-level=test",
                "--http-port",
                str(_free_port()),
            ],
            check=False,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=odoo_env(),
        )
    for line in _odoo_log_summary(log):
        print("  " + line)
    installed = pg.psql(
        f"SELECT state FROM ir_module_module WHERE name = '{ADDON}'", dbname=db, check=False
    ).stdout.strip()
    if installed != "installed":
        raise HarnessError(
            f"Odoo could not install {ADDON} in {db}: {_last_error(log)} (full log: {log})"
        )
    odoo_ok = proc.returncode == 0
    say(
        "Odoo's test runner: "
        + ("passed" if odoo_ok else f"FAILED (exit {proc.returncode}), see {log}")
    )
    # 2. pytest: the pure tests and the Odoo tests again through pytest-odoo, on the same database.
    # Run from the link's parent: a cwd inside the link would resolve to the checkout's real name.
    proc = run(
        [
            *pytest_base,
            "-c",
            f"{ADDON}/pyproject.toml",
            f"--rootdir={ADDON}",
            "--odoo-database",
            db,
            "--odoo-config",
            str(conf),
            "--odoo-http",
            "--odoo-log-level",
            "critical",
            f"{ADDON}/tests",
            *args.pytest_args,
        ],
        check=False,
        cwd=BUILD / "addons",
        env=odoo_env(),
    )
    return proc.returncode or (0 if odoo_ok else 1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(py, state_dir, extra_args=()):
    """The CIS simulator in the background; returns (process, instance.json path)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "instance.json"
    config.unlink(missing_ok=True)
    log = (LOGS / "simulator.log").open("w")
    proc = subprocess.Popen(
        [
            str(py),
            "-m",
            "microsoft_esd",
            "simulator",
            "--port",
            "0",
            "--state",
            str(state_dir),
            *extra_args,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not config.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise HarnessError(f"the CIS simulator did not start: see {LOGS / 'simulator.log'}")
        time.sleep(0.1)
    return proc, config


def cmd_demo(args):
    py = ensure_venv()
    _version, odoo_pkg = find_odoo(py)
    addons = addons_path(odoo_pkg)
    if _tcp_answers("127.0.0.1", args.port):
        raise HarnessError(
            f"port {args.port} on 127.0.0.1 is already in use: stop what serves it "
            "(an earlier make demo?) or run make demo PORT=<other>"
        )
    pg = Postgres().ensure(keep_running=True)
    db = args.database
    conf = write_config("odoo-demo", pg, addons, {"dbfilter": f"^{db}$"})
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / "odoo-demo-setup.log"
    exists = pg.database_exists(db)
    action = ["-u", ADDON] if exists else ["-i", ADDON]
    say(("updating" if exists else "creating") + f" the demo database {db} (log: {log})")
    with log.open("w") as out:
        proc = run(
            [
                *odoo_command(py, odoo_pkg),
                "-c",
                str(conf),
                "-d",
                db,
                *action,
                "--stop-after-init",
                "--http-port",
                str(_free_port()),
            ],
            check=False,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=odoo_env(),
        )
    if proc.returncode != 0:
        raise HarnessError(
            f"the demo database could not be prepared: {_last_error(log)} "
            f"(full log: {log}; `make demo-reset` starts from scratch)"
        )
    simulator, sim_config = start_simulator(py, BUILD / "demo-simulator")
    say(f"CIS simulator running, client configuration in {sim_config}")
    setup = run(
        [*odoo_command(py, odoo_pkg), "shell", "-c", str(conf), "-d", db, "--no-http"],
        check=False,
        input=(ROOT / "tools" / "demo_setup.py").read_text(),
        capture_output=True,
        text=True,
        env=dict(odoo_env(), ESD_DEMO_CONFIG=str(sim_config)),
    )
    marker = [line for line in setup.stdout.splitlines() if line.startswith("ESD-DEMO")]
    if not marker:
        simulator.terminate()
        raise HarnessError(
            "the demo ESD instance could not be set up: "
            + ((setup.stderr or setup.stdout).strip().splitlines() or ["no output"])[-1]
        )
    _, state, products, licenses, *error = marker[0].split(" ", 4)
    error = " ".join(error)
    say(f"demo ESD instance: {state}, {products} products, {licenses} licenses sold {error}")
    url = f"http://127.0.0.1:{args.port}/web/login"
    print("\n" + "=" * 78)
    print(f"  Microsoft ESD demo: {url}   (database {db})")
    print("  administrator: admin / admin        salesperson: demo / demo")
    print("  portal customer: portal / portal    portal reseller: reseller / reseller")
    print("  Sales > Microsoft ESD.  Simulator admin: .venv/bin/esd --config " + str(sim_config))
    print("  Stop with Ctrl-C.")
    print("=" * 78 + "\n", flush=True)
    server = subprocess.Popen(
        [
            *odoo_command(py, odoo_pkg),
            "-c",
            str(conf),
            "-d",
            db,
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(args.port),
            "--log-level",
            "warn",
        ],
        env=odoo_env(),
    )
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        server.wait()
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    simulator.terminate()
    simulator.wait(timeout=10)
    pg.stop()
    return 0


def cmd_bench(args):
    """The benchmarks of docs/benchmarks.md (they print figures; they assert nothing)."""
    py = ensure_venv()
    if not os.environ.get("ESD_BENCH_PROFILE"):
        say("CIS client: 200 orders with 50 ms latency, sequential and 8 in parallel")
        run([str(py), str(ROOT / "bench" / "bench_orders.py")], cwd=ROOT)
    _version, odoo_pkg = find_odoo(py)
    addons = addons_path(odoo_pkg)
    pg = Postgres().ensure()
    db = f"esd_bench_{os.getpid()}"
    conf = write_config("odoo-bench", pg, addons)
    LOGS.mkdir(parents=True, exist_ok=True)
    atexit.register(pg.drop_database, db)
    log = LOGS / "odoo-bench.log"
    say(f"installing {ADDON} in {db} (log: {log})")
    with log.open("w") as out:
        run(
            [
                *odoo_command(py, odoo_pkg),
                "-c",
                str(conf),
                "-d",
                db,
                "-i",
                ADDON,
                "--without-demo=all",
                "--stop-after-init",
                "--http-port",
                str(_free_port()),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=odoo_env(),
        )

    def shell(script, sim_config, **extra_env):
        proc = run(
            [*odoo_command(py, odoo_pkg), "shell", "-c", str(conf), "-d", db, "--no-http"],
            input=(ROOT / "bench" / script).read_text(),
            capture_output=True,
            text=True,
            check=False,
            env=dict(odoo_env(), ESD_BENCH_CONFIG=str(sim_config), **extra_env),
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("ESD-BENCH ")]
        if os.environ.get("ESD_BENCH_PROFILE"):
            print(proc.stdout)
        if not lines:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise HarnessError(f"the benchmark {script} failed: {last}")
        print(json.dumps(json.loads(lines[0][len("ESD-BENCH ") :]), indent=2), flush=True)

    def simulator(extra_products):
        state = Path(tempfile.mkdtemp(prefix="esd-bench-sim-"))
        proc, config = start_simulator(py, state, ["--extra-products", str(extra_products)])
        atexit.register(proc.terminate)
        return config

    if not os.environ.get("ESD_BENCH_PROFILE"):
        say(f"catalog sync of {args.products} active products: first, then unchanged")
        shell("bench_catalog_sync.py", simulator(args.products - 13))
    say(
        f"provisioning {args.licenses // 4} then {args.licenses} licenses, 100 ms latency per order"
    )
    shell("bench_provisioning.py", simulator(0), ESD_BENCH_LICENSES=str(args.licenses))
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_demo_reset(args):
    pg = Postgres().ensure()
    pg.drop_database(args.database)
    shutil.rmtree(BUILD / "data" / "filestore" / args.database, ignore_errors=True)
    say(f"dropped the demo database {args.database}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("test", help="run every test (pure + Odoo)")
    sub.add_parser("test-pure", help="run the pure package's tests only (no Odoo, no database)")
    demo = sub.add_parser("demo", help="serve the demo database on 127.0.0.1")
    demo.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8069")))
    demo.add_argument("--database", default="esd_demo")
    bench = sub.add_parser("bench", help="run the benchmarks of docs/benchmarks.md")
    bench.add_argument("--products", type=int, default=5000)
    bench.add_argument("--licenses", type=int, default=200)
    reset = sub.add_parser("demo-reset", help="drop the demo database")
    reset.add_argument("--database", default="esd_demo")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("test", "test-pure"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    handler = {
        "test": cmd_test,
        "test-pure": cmd_test_pure,
        "demo": cmd_demo,
        "demo-reset": cmd_demo_reset,
        "bench": cmd_bench,
    }[args.command]
    started = time.monotonic()
    try:
        rc = handler(args)
    except HarnessError as exc:
        print(f"[esd] ERROR: {exc}", file=sys.stderr, flush=True)
        return 2
    if args.command == "test":
        say(f"make test finished in {time.monotonic() - started:.0f}s with exit code {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
