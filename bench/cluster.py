"""Real Odoo servers on one database, for the soak test, the scale-out and checkout benchmarks.

No Odoo import: it starts ``odoo-bin`` processes (threaded mode, their cron threads run the
provisioning crons; or prefork, with HTTP and cron worker processes), runs scripts in ``odoo-bin
shell``, kills servers with SIGKILL and reads the database with psycopg2. ``make soak`` / ``make
bench`` pass what it needs in the environment: ESD_ODOO_CMD (JSON list), ESD_ODOO_CONF, ESD_DB,
ESD_SIM_CONFIG.
"""

import configparser
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import logscan  # noqa: E402

from microsoft_esd.config import InstanceConfig  # noqa: E402
from microsoft_esd.simulator import AdminClient  # noqa: E402


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """Odoo servers sharing one database and one CIS simulator."""

    def __init__(self, logs):
        self.cmd = json.loads(os.environ["ESD_ODOO_CMD"])
        self.conf = os.environ["ESD_ODOO_CONF"]
        self.db = os.environ["ESD_DB"]
        self.sim_config = os.environ["ESD_SIM_CONFIG"]
        self.sim = AdminClient(InstanceConfig.from_file(self.sim_config))
        self.logs = Path(logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.servers = {}
        self.started = 0
        options = configparser.ConfigParser()
        options.read(self.conf)
        opts = options["options"]
        password = opts.get("db_password", "False")
        self.dsn = {
            "dbname": self.db,
            "host": opts.get("db_host"),
            "port": opts.get("db_port"),
            "user": opts.get("db_user"),
            "password": None if password in ("False", "") else password,
        }

    # ------------------------------------------------------------------ servers
    def start(self, name, cron_threads=2, log_level="warn", workers=0, extra=(), http_port=None):
        """An odoo-bin server whose cron threads run the crons of this database: threaded, or
        prefork with ``workers`` HTTP workers (its cron_threads are then cron worker processes);
        ``extra``: more odoo-bin options; its HTTP port, or a free one."""
        self.started += 1
        log = self.logs / f"{name}-{self.started}.log"
        http_port = http_port or free_port()
        cmd = [
            *self.cmd,
            "-c",
            self.conf,
            "-d",
            self.db,
            "--workers",
            str(workers),
            "--max-cron-threads",
            str(cron_threads),
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(http_port),
            "--gevent-port",
            str(free_port()),
            "--log-level",
            log_level,
            "--logfile",
            str(log),
            *map(str, extra),
        ]
        # Its standard error too, beside its log: what the log misses (a thread's uncaught
        # exception, which Python prints there), counted with the log's errors.
        with (self.logs / f"{name}-{self.started}{logscan.STDERR_SUFFIX}").open("w") as stderr:
            self.servers[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        self.servers[name].http_port = http_port
        return self.servers[name]

    def kill(self, name):
        """SIGKILL: no cleanup, no rollback message; the database rolls back what it held."""
        proc = self.servers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all_idle(self, settle=3.0):
        """Stop the servers once their cron threads are idle: every cron is made inactive for
        the stop (a cron thread stopped in the middle of a job logs a traceback), then made
        active again."""
        active = [row[0] for row in self.query("SELECT id FROM ir_cron WHERE active")]
        if active:
            self.execute("UPDATE ir_cron SET active = false WHERE id IN %s", (tuple(active),))
        deadline = time.monotonic() + 60
        time.sleep(settle)
        while time.monotonic() < deadline and self.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid != pg_backend_pid() "
            "AND state IN ('active', 'idle in transaction')",
            (self.db,),
        ):
            time.sleep(0.2)
        self.stop_all()
        if active:
            self.execute("UPDATE ir_cron SET active = true WHERE id IN %s", (tuple(active),))

    def stop_all(self, prefork=False):
        """Stop every server. With ``prefork``, each is signalled twice, half a second apart: a
        prefork server stops at once on its second signal, even with workers stuck."""
        if prefork:
            for proc in self.servers.values():
                proc.terminate()
            time.sleep(0.5)
        for name in list(self.servers):
            proc = self.servers.pop(name)
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    # ------------------------------------------------------------------ scripts
    def shell(self, script, background=False, **env):
        """Run ``script`` (Python text) in odoo-bin shell; its output, or its process."""
        cmd = [*self.cmd, "shell", "-c", self.conf, "-d", self.db, "--no-http"]
        full_env = dict(os.environ, **{k: str(v) for k, v in env.items()})
        if background:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                env=full_env,
            )
            proc.stdin.write(script)
            proc.stdin.close()
            return proc
        proc = subprocess.run(
            cmd, input=script, capture_output=True, text=True, env=full_env, check=False
        )
        if proc.returncode:
            raise RuntimeError(f"odoo shell failed: {(proc.stderr or proc.stdout)[-2000:]}")
        return proc.stdout

    # ------------------------------------------------------------------ the database
    def query(self, sql, params=()):
        with psycopg2.connect(**self.dsn) as conn, conn.cursor() as cr:
            cr.execute(sql, params)
            return cr.fetchall()

    def scalar(self, sql, params=()):
        return self.query(sql, params)[0][0]

    def execute(self, sql, params=()):
        with psycopg2.connect(**self.dsn) as conn, conn.cursor() as cr:
            cr.execute(sql, params)
