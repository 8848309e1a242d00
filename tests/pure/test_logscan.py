"""tools/logscan.py: the secrets make test looks for in its logs, and Odoo's failing tests."""

import importlib.util
from pathlib import Path

import pytest

# tests/pure runs from a linked folder: resolve() finds the checkout, and its tools/ folder.
_PATH = Path(__file__).resolve().parents[2] / "tools" / "logscan.py"
_SPEC = importlib.util.spec_from_file_location("logscan", _PATH)
logscan = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(logscan)

# Built from parts so that this file itself reads like none of them.
KEY = "-".join(["BCDFG", "HJKMP", "QRTVW", "XY234", "6789B"])
JWT = "eyJ" + "hbGciOiJSUzI1NiJ9." + "eyJzdWIiOiJlc2QifQ." + "c2lnbmF0dXJl"
TOKEN = "k3Jx9_Qw-" + "Zr8Lm2Vb7Nc4Tp6Yh1Gf"
LOG = "2026-01-01 10:00:00,000 42 INFO esd_test odoo.addons.microsoft_esd.models.esd_asset: {}"


@pytest.mark.parametrize(
    ("message", "what"),
    [
        (f"license ordered, token {KEY}", "a Microsoft product key"),
        (f'{{"token": "{KEY}"}}', "a Microsoft product key"),
        (f"Authorization: Bearer {TOKEN}", "a bearer token"),
        (f"Authorization: Bearer {JWT}", "a bearer token"),
        (f"assertion {JWT}", "a JWT"),
        ("PFX password " + "simpw-" + "Zr8Lm2Vb7Nc4Tp6Y", "a certificate password"),
    ],
    ids=["key", "key-in-json", "bearer", "bearer-jwt", "jwt", "password"],
)
def test_a_secret_is_found_by_line_and_kind(message, what):
    text = "\n".join([LOG.format("first line"), LOG.format(message)])
    assert (2, what) in logscan.find_secrets(text)


@pytest.mark.parametrize(
    "message",
    [
        "license ordered, token *****-*****-*****-*****-" + KEY[-5:],
        "Authorization: Bearer ***",
        "Authorization: Bearer",
        "catalog product EP2-06606:en-US, correlation 3f2c9a1e-8b7d-4c5e-9f01-2a3b4c5d6e7f",
        "odoo.addons.sale.tests.test_sale_order: Starting TestSaleOrder.test_bearer_tokens ...",
    ],
    ids=["masked-key", "masked-bearer", "header-name", "ids", "test-name"],
)
def test_masked_secrets_and_ordinary_lines_are_not_secrets(message):
    assert logscan.find_secrets(LOG.format(message)) == []


def test_the_leak_report_names_file_and_line_never_the_secret(tmp_path):
    log = tmp_path / "odoo-test.log"
    log.write_text(f"{LOG.format('ok')}\n{LOG.format(KEY)}\n{LOG.format('Bearer ' + TOKEN)}\n")
    clean = tmp_path / "pytest.log"
    clean.write_text("5 passed in 3.1s\n")
    report = logscan.leak_report([clean, log])
    assert report == f"a Microsoft product key is in {log}:2 (and 1 more); no log may hold one"
    assert KEY not in report and TOKEN not in report
    assert logscan.leak_report([clean]) == ""


def test_failing_tests_of_an_odoo_log_and_the_known_ones():
    lines = [
        "2026-01-01 10:00:00,000 42 ERROR db odoo.addons.account.tests.test_payment:"
        " FAIL: TestAccountPaymentRegister.test_in_invoice_payment_register_wizard",
        "2026-01-01 10:00:01,000 42 ERROR db odoo.addons.sale.tests.test_sale_order:"
        " ERROR: Subtest TestSaleOrder.test_x (line=1)",
        "2026-01-01 10:00:02,000 42 ERROR db unittest.suite:"
        " ERROR: setUpClass (odoo.addons.mail.tests.discuss.test_sub.TestSub)",
        "2026-01-01 10:00:03,000 42 INFO db odoo.addons.sale.tests.test_sale_order:"
        " Starting TestSaleOrder.test_y ...",
    ]
    failed = logscan.failing_tests("\n".join(lines))
    assert failed == [
        "account TestAccountPaymentRegister.test_in_invoice_payment_register_wizard",
        "sale TestSaleOrder.test_x",
        "mail TestSub.setUpClass",
    ]
    known = "# why\naccount test_in_invoice_payment_register_wizard  # fails without us\n"
    assert [logscan.is_known(test, known) for test in failed] == [True, False, False]
    assert logscan.is_known("sale TestSaleOrder.test_x", "sale TestSaleOrder.test_x  # why")
    assert not logscan.is_known("sale TestSaleOrder.test_x", "account TestSaleOrder.test_x")


def test_a_traceback_on_a_server_s_standard_error_counts_as_unexpected(tmp_path):
    """A thread's uncaught exception, which Python prints on the standard error and not in
    Odoo's log, is in the server's standard error beside its log: it counts, and its file is
    named."""
    log, stderr = tmp_path / "server1-1.log", tmp_path / "server1-1.stderr.log"
    log.write_text(LOG.format("license delivered") + "\n")
    stderr.write_text(
        "\n".join(
            [
                "Running as user 'root' is a security risk.",
                "Exception in thread odoo.service.cron.cron0:",
                "Traceback (most recent call last):",
                '  File "threading.py", line 1045, in _bootstrap_inner',
            ]
        )
    )
    lines, met = logscan.error_report([log, stderr], "scale-out")
    assert not met
    assert lines == [
        "scale-out: 0 ERROR lines, 1 Traceback lines in 1 Odoo logs and 1 standard errors; "
        "unexpected: 0 ERROR, 1 Traceback (goal 0: MISSED)",
        "  server1-1.stderr.log: 0 ERROR (none), 1 Traceback",
    ]


CUT_SHORT = [
    "Running as user 'root' is a security risk.",
    "Exception in thread odoo.service.cron.cron0:",
    "Traceback (most recent call last):",
    '  File "/usr/lib/python3.11/threading.py", line 1045, in _bootstrap_inner',
]


def test_a_cron_thread_cut_short_by_the_server_s_stop_is_expected_when_named(tmp_path):
    """Odoo's threaded server stopped by a benchmark: its idle cron thread's exception, which
    the interpreter's exit stops after the first frame (the scale-out's 4-server run, once in
    a while). Named as expected, it is counted apart; not named, it still counts."""
    log, stderr = tmp_path / "server4-7.log", tmp_path / "server4-7.stderr.log"
    log.write_text(LOG.format("license delivered") + "\n")
    stderr.write_text("\n".join(CUT_SHORT) + "\n")
    lines, met = logscan.error_report([log, stderr], "scale-out", ("cron_thread_at_stop",))
    assert met
    assert lines == [
        "scale-out: 0 ERROR lines, 1 Traceback lines in 1 Odoo logs and 1 standard errors; "
        "unexpected: 0 ERROR, 0 Traceback (goal 0: met)",
        "  expected: 0 ERROR, 1 Traceback: Odoo's threaded server stopped by the benchmark: an "
        "idle cron thread's exception, cut short on its standard error by the interpreter's exit",
        "  server4-7.stderr.log: 0 ERROR (none), 1 Traceback",
    ]
    assert not logscan.error_report([log, stderr], "scale-out")[1]


@pytest.mark.parametrize(
    "text",
    [
        # The traceback goes on to its exception: the thread failed while the server ran.
        [*CUT_SHORT, "    self.run()", "psycopg2.InterfaceError: connection already closed"],
        # Another thread than Odoo's cron threads.
        [CUT_SHORT[0], "Exception in thread Thread-5:", *CUT_SHORT[2:]],
        # A complete one first, then one cut short: the first counts.
        [*CUT_SHORT, "RuntimeError: boom", *CUT_SHORT[1:]],
    ],
)
def test_other_thread_tracebacks_on_a_standard_error_still_count(tmp_path, text):
    stderr = tmp_path / "server1-1.stderr.log"
    stderr.write_text("\n".join(text) + "\n")
    lines, met = logscan.error_report([stderr], "scale-out", ("cron_thread_at_stop",))
    assert not met
    assert "unexpected: 0 ERROR, 1 Traceback (goal 0: MISSED)" in lines[0]


def test_tracebacks_interleaved_on_a_standard_error_are_all_counted(tmp_path):
    """The soak's server2-16: a cron thread's exception, and on the same line the traceback of
    the server Odoo re-executed after its cron thread passed the real-time limit (which could
    not import Odoo: its Python found no virtualenv). Both count; neither is the cut-short
    kind."""
    stderr = tmp_path / "server2-16.stderr.log"
    stderr.write_text(
        "\n".join(
            [
                "Running as user 'root' is a security risk.",
                "Exception in thread odoo.service.cron.cron1Traceback (most recent call last):",
                '  File "odoo-bin", line 5, in <module>',
                "    import odoo",
                "ModuleNotFoundError: No module named 'babel'",
            ]
        )
        + "\n"
    )
    lines, met = logscan.error_report([stderr], "soak", ("cron_thread_at_stop",))
    assert not met
    assert "1 Traceback lines" in lines[0]
    assert "unexpected: 0 ERROR, 1 Traceback (goal 0: MISSED)" in lines[0]


def test_error_counts_name_each_logs_errors_and_tracebacks_by_logger(tmp_path):
    """What the soak and the benchmarks print of every Odoo log they produced: ERROR and
    Traceback lines, by logger, never the messages."""
    quiet, loud = tmp_path / "server1-1.log", tmp_path / "server2-2.log"
    quiet.write_text(LOG.format("license delivered") + "\n")
    loud.write_text(
        "\n".join(
            [
                LOG.format("ok"),
                LOG.replace(" INFO ", " ERROR ")
                .replace("odoo.addons.microsoft_esd.models.esd_asset", "odoo.sql_db")
                .format("bad query: UPDATE esd_asset SET secret"),
                "Traceback (most recent call last):",
                '  File "x.py", line 1, in <module>',
                LOG.replace(" INFO ", " CRITICAL ").format("down"),
            ]
        )
    )
    counts = logscan.error_counts([quiet, loud])
    assert counts[quiet] == (0, 0, {})
    assert counts[loud] == (
        2,
        1,
        {"odoo.sql_db": 1, "odoo.addons.microsoft_esd.models.esd_asset": 1},
    )
    lines, met = logscan.error_report([quiet, loud], "scale-out")
    assert not met
    assert lines[0] == (
        "scale-out: 2 ERROR lines, 1 Traceback lines in 2 Odoo logs; unexpected: 2 ERROR, "
        "1 Traceback (goal 0: MISSED)"
    )
    assert "secret" not in "\n".join(lines)
    assert logscan.error_report([quiet], "soak") == (
        [
            "soak: 0 ERROR lines, 0 Traceback lines in 1 Odoo logs; unexpected: 0 ERROR, "
            "0 Traceback (goal 0: met)"
        ],
        True,
    )


# Shaped as Odoo 18 writes them (tools/logscan.py EXPECTED): the checkout's warm-up and the soak.
PAYMENT_RACE = """\
2026-12-06 19:35:35,652 2182 ERROR db odoo.sql_db: bad query: b' UPDATE "account_move" SET ...'
ERROR: duplicate key value violates unique constraint "account_move_unique_name"
DETAIL:  Key (name, journal_id)=(PBNK1/2026/00001, 6) already exists.
\x20
2026-12-06 19:35:35,663 2182 ERROR db odoo.http: Exception during request handling.\x20
Traceback (most recent call last):
  File "addons/payment/controllers/post_processing.py", line 53, in poll_status
psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint \
"account_move_unique_name"
DETAIL:  Key (name, journal_id)=(PBNK1/2026/00001, 6) already exists.


During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "addons/payment/controllers/post_processing.py", line 58, in poll_status
Exception: retry
2026-12-06 19:35:35,666 2182 INFO db werkzeug: "POST /payment/status/poll HTTP/1.1" 200 -
"""
CRON_KILLED = (
    "2026-12-06 19:19:49,948 726 ERROR db odoo.addons.base.models.ir_cron: Job 'Microsoft ESD: "
    "finish returns and their credit notes' (34) timed out \n"
)


def test_only_the_kinds_a_run_expects_are_set_apart_and_the_rest_still_count(tmp_path):
    log = tmp_path / "shop-1.log"
    log.write_text(PAYMENT_RACE + CRON_KILLED)
    lines, met = logscan.error_report([log], "checkout", expected=("first_payment_number",))
    assert not met  # the cron's line is not the checkout's to expect
    assert lines[0] == (
        "checkout: 3 ERROR lines, 2 Traceback lines in 1 Odoo logs; unexpected: 1 ERROR, "
        "0 Traceback (goal 0: MISSED)"
    )
    assert lines[1].startswith("  expected: 2 ERROR, 2 Traceback: Odoo's payment")
    lines, met = logscan.error_report(
        [log], "soak", expected=("first_payment_number", "cron_killed")
    )
    assert met
    # nothing is expected unless asked for
    assert not logscan.error_report([log], "scale-out")[1]


@pytest.mark.parametrize(
    "other",
    [
        # the addon's own invoicing racing for an invoice's first number: not Odoo's payment
        PAYMENT_RACE.replace("PBNK1/2026/00001", "INV/2026/00001"),
        # a later number: not the fresh journal's race
        PAYMENT_RACE.replace("PBNK1/2026/00001", "PBNK1/2026/00002"),
        # another cron line of the runner
        CRON_KILLED.replace("timed out", "failed"),
    ],
    ids=["invoice-first-number", "later-payment-number", "cron-failed"],
)
def test_a_line_like_an_expected_one_but_not_it_still_counts(tmp_path, other):
    log = tmp_path / "server.log"
    log.write_text(other)
    lines, met = logscan.error_report(
        [log], "soak", expected=("first_payment_number", "cron_killed")
    )
    assert not met
    assert not [line for line in lines if line.startswith("  expected:")]


def test_pytest_failures_are_named_without_their_messages():
    text = "\n".join(
        [
            "......F...E" + " " * 60 + "[100%]",
            "=========================== short test summary info ============================",
            f"FAILED pure/test_pacing.py::test_threads_share_one_pace - assert '{KEY}' == 1",
            "ERROR pure/test_cli.py::test_simulator_starts - OSError: address in use",
            "1 failed, 209 passed, 1 error in 19.61s",
        ]
    )
    assert logscan.pytest_failures(text) == [
        "pure/test_pacing.py::test_threads_share_one_pace",
        "pure/test_cli.py::test_simulator_starts",
    ]
    assert logscan.pytest_failures("210 passed, 1 skipped in 20.27s") == []
