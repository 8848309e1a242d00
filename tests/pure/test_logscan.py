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
        "scale-out: 2 ERROR lines, 1 Traceback lines in 2 Odoo logs (goal 0: MISSED)"
    )
    assert "secret" not in "\n".join(lines)
    assert logscan.error_report([quiet], "soak") == (
        ["soak: 0 ERROR lines, 0 Traceback lines in 1 Odoo logs (goal 0: met)"],
        True,
    )
