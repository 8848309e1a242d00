"""bench/run.py: a checkout benchmark whose customers could not all pay fails ``make bench``."""

import importlib.util
import sys
from pathlib import Path

import pytest

# tests/pure runs from a linked folder: resolve() finds the checkout, its bench/ and tools/.
_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_ROOT / "tools"))
_SPEC = importlib.util.spec_from_file_location("bench_run", _ROOT / "bench" / "run.py")
bench_run = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_run)


def measured(**figures):
    run = {
        "customers": 20,
        "paid": 20,
        "licenses_without_email": 0,
        "licenses_with_several_emails": 0,
    }
    return {**run, **figures}


def test_a_checkout_run_whose_customers_all_paid_and_got_one_email_each_stands():
    assert bench_run.checkout_failure(measured()) == ""


@pytest.mark.parametrize(
    ("figures", "why"),
    [
        # A fresh machine without wkhtmltopdf: every payment's confirmation failed, 0 licenses.
        ({"paid": 0}, "20 of 20 customers could not pay"),
        ({"paid": 19}, "1 of 20 customers could not pay"),
        ({"licenses_without_email": 1}, "a license email was lost or doubled"),
        ({"licenses_with_several_emails": 2}, "a license email was lost or doubled"),
    ],
)
def test_a_checkout_run_that_says_nothing_of_the_time_to_key_fails(figures, why):
    assert bench_run.checkout_failure(measured(**figures)).startswith(why)
