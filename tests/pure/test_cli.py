"""The esd command line, run as a user would, against a simulator started from the command line."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
from conftest import PRODUCT

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEYS = {
    "service_url",
    "resource_api",
    "tenant",
    "authority",
    "channel_id",
    "client_id",
    "certificate_path",
    "certificate_password",
    "ca_bundle",
    "country",
    "language",
}


def esd(*args, check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "microsoft_esd", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def sim_process(tmp_path_factory):
    state = tmp_path_factory.mktemp("cli-sim")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "microsoft_esd", "simulator", "--port", "0", "--state", str(state)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    config = state / "instance.json"
    deadline = time.monotonic() + 30
    while not config.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the simulator did not write instance.json"
        time.sleep(0.05)
    yield config
    proc.terminate()
    proc.wait(timeout=10)


def test_simulator_writes_a_complete_client_configuration(sim_process):
    config = json.loads(sim_process.read_text())
    assert KEYS <= set(config)
    assert config["service_url"].startswith("https://127.0.0.1:")
    assert pathlib.Path(config["certificate_path"]).exists()
    assert pathlib.Path(config["ca_bundle"]).exists()


def test_check_catalog_account_order_status_redeem_return(sim_process):
    cfg = ["--config", str(sim_process)]
    assert "OK: authenticated" in esd(*cfg, "check").stdout
    catalog = json.loads(esd(*cfg, "catalog", "--json").stdout)
    assert {"productId", "sku", "title", "unitPrice", "status"} <= set(catalog[0])
    account = json.loads(
        esd(
            *cfg, "account", "--role", "user", "--email", "a@b.example", "--name", "A", "--json"
        ).stdout
    )
    order_args = ["order", "--product", PRODUCT, "--customer", account["accountId"]]
    order_args += ["--request-id", "cli-1", "--json"]
    order = json.loads(esd(*cfg, *order_args).stdout)
    (lic,) = order["licenses"]
    assert {"licenseId", "token", "activationLink", "tokenStatus", "returnStatus"} <= set(lic)
    assert lic["activationDate"] is None
    again = json.loads(esd(*cfg, *order_args).stdout)  # same request id: same order
    assert again["licenses"][0]["token"] == lic["token"]

    esd(*cfg, "sim", "redeem", lic["licenseId"])
    status = json.loads(esd(*cfg, "status", lic["licenseId"], "--json").stdout)
    assert status["tokenStatus"] == "Redeemed" and status["activationDate"]

    refused = esd(*cfg, "return", lic["licenseId"], check=False)
    assert refused.returncode == 1
    assert "LicenseRedeemed" in refused.stderr and refused.stdout == ""
    assert lic["token"] not in refused.stderr


def test_sim_fault_and_catalog_admin(sim_process):
    cfg = ["--config", str(sim_process)]
    faults = json.loads(
        esd(*cfg, "sim", "fault", "--latency-ms", "5", "--paths", "orders", "--json").stdout
    )
    assert faults["latency_ms"] == 5 and faults["paths"] == "orders"
    assert json.loads(esd(*cfg, "sim", "fault", "--clear", "--json").stdout)["latency_ms"] == 0
    item = json.loads(
        esd(*cfg, "sim", "catalog", "reprice", PRODUCT, "--amount", "123.45", "--json").stdout
    )
    assert item["unitPrice"]["amount"] == 123.45
    stats = json.loads(esd(*cfg, "sim", "stats", "--json").stdout)
    assert stats["tokens_issued"] >= 1


def test_errors_are_one_line_on_stderr_with_exit_codes(sim_process, tmp_path):
    missing = esd("--config", str(tmp_path / "none.json"), "check", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = esd("--config", str(sim_process), "status", "no-such-license", check=False)
    assert unknown.returncode == 1 and "does not know license no-such-license" in unknown.stderr
