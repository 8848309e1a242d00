"""The README's screenshots, taken from a running ``make demo`` with headless Chromium.

    make demo PORT=8070 &   # then, once it serves:
    .venv/bin/python tools/screenshots.py --port 8070 [--out static/description/screenshots]

Logs in as the demo administrator (an ESD manager), opens each screen through Odoo's own action
service, and saves a PNG per screen. The last one runs the license import wizard of the demo
instance, so run it on a demo database whose pre-Odoo licenses are not imported yet.
"""

import argparse
import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]


class Browser:
    """Just enough of the Chrome DevTools protocol: navigate, evaluate, capture."""

    def __init__(self, width=1440, height=900):
        self.profile = tempfile.mkdtemp(prefix="esd-shots-")
        chromium = next(
            filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"]))
        )
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        for _ in range(100):
            if port_file.exists() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.ids = 0
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method, **params):
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            answer = json.loads(self.ws.recv())
            if answer.get("id") == self.ids:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, selector, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(f"!!document.querySelector({json.dumps(selector)})"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"{selector} did not appear")

    def shot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        print(f"saved {path}")  # pylint: disable=print-used

    def close(self):
        with contextlib.suppress(Exception):
            self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def do_action(browser, action, options=None):
    """Run an action through Odoo's action service, as a menu click does."""
    browser.evaluate(
        "odoo.__WOWL_DEBUG__.root.env.services.action.doAction("
        f"{json.dumps(action)}, {json.dumps(options or {})}).then(() => true)"
    )
    time.sleep(2.5)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8070)
    parser.add_argument("--db", default="esd_demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", default=str(ROOT / "static" / "description" / "screenshots"))
    parser.add_argument(
        "--shots",
        default="overview,pivot,graph,states,prices,import",
        help="which screens, comma-separated (import runs the wizard: once per demo database; "
        "prices takes the four screens of prices and margins)",
    )
    args = parser.parse_args(argv)
    shots = set(args.shots.split(","))
    base = f"http://127.0.0.1:{args.port}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    session = requests.Session()
    auth = session.post(
        f"{base}/web/session/authenticate",
        json={"params": {"db": args.db, "login": args.login, "password": args.password}},
        timeout=30,
    )
    auth.raise_for_status()
    browser = Browser()
    try:
        browser.call("Network.enable")
        browser.call(
            "Network.setCookie",
            name="session_id",
            value=session.cookies["session_id"],
            domain="127.0.0.1",
            path="/",
        )
        browser.call("Page.navigate", url=f"{base}/odoo/action-microsoft_esd.action_esd_overview")
        browser.wait_for(".o_kanban_record")
        time.sleep(2)
        if "overview" in shots:
            browser.shot(out / "overview.png")
        if "pivot" in shots:
            pivot(browser, out)
        if "graph" in shots:
            do_action(browser, "microsoft_esd.action_esd_asset_report", {"viewType": "graph"})
            browser.wait_for(".o_graph_renderer canvas")
            time.sleep(1.5)
            browser.shot(out / "report-graph.png")
        if "states" in shots:
            do_action(browser, "microsoft_esd.action_esd_asset_states")
            browser.wait_for(".o_search_panel")
            browser.shot(out / "licenses-by-state.png")
        if "prices" in shots:
            prices(browser, out, Rpc(session, base))
        if "import" in shots:
            do_action(browser, "microsoft_esd.action_esd_license_import")
            browser.wait_for(".modal button[name=action_import]")
            browser.evaluate("document.querySelector('.modal button[name=action_import]').click()")
            browser.wait_for(".modal .alert-success")
            time.sleep(1.5)
            browser.shot(out / "import-summary.png")
    finally:
        browser.close()
    return 0


class Rpc:
    """JSON-RPC calls with the screenshot tool's session."""

    def __init__(self, session, base):
        self.session, self.base = session, base

    def __call__(self, model, method, *args, **kwargs):
        params = {"model": model, "method": method, "args": list(args), "kwargs": kwargs}
        answer = self.session.post(
            f"{self.base}/web/dataset/call_kw", json={"params": params}, timeout=30
        ).json()
        if "error" in answer:
            raise RuntimeError(answer["error"]["data"]["message"])
        return answer["result"]


def open_record(browser, model, res_id):
    do_action(
        browser,
        {
            "type": "ir.actions.act_window",
            "res_model": model,
            "res_id": res_id,
            "views": [[False, "form"]],
        },
    )


def prices(browser, out, rpc):
    """The instance's sales price rule, a price change in its product's chatter, the month's
    price changes, and License Analysis's margins per tier and month."""
    instance = rpc("esd.instance", "search", [], limit=1)[0]
    open_record(browser, "esd.instance", instance)
    browser.wait_for("div[name=esd_price_from_cost]")
    browser.evaluate(
        "document.querySelector('div[name=esd_price_from_cost]')"
        ".scrollIntoView({block: 'center'}) || true"
    )
    time.sleep(1)
    browser.shot(out / "prices-instance-rule.png")
    changes = rpc("esd.price.change", "search_read", [], ["product_tmpl_id"], limit=1)
    if changes:
        open_record(browser, "product.template", changes[0]["product_tmpl_id"][0])
        browser.wait_for(".o-mail-Message")
        browser.evaluate(
            "document.querySelector('.o-mail-Message').scrollIntoView({block: 'center'}) || true"
        )
        time.sleep(1)
        browser.shot(out / "prices-change-note.png")
    do_action(browser, "microsoft_esd.action_esd_price_change")
    browser.wait_for(".o_list_renderer")
    browser.shot(out / "prices-changes.png")
    do_action(
        browser,
        "microsoft_esd.action_esd_asset_report",
        {
            "additionalContext": {
                "pivot_row_groupby": ["pricelist_id"],
                "pivot_column_groupby": ["purchase_date:month"],
                "pivot_measures": ["net_revenue", "margin", "margin_percent"],
            }
        },
    )
    browser.wait_for(".o_pivot table")
    browser.shot(out / "report-pivot-margins.png")


def pivot(browser, out):
    """License Analysis, per reseller (Billed To) and month: what sold last month, per reseller."""
    do_action(
        browser,
        "microsoft_esd.action_esd_asset_report",
        {
            "additionalContext": {
                "pivot_row_groupby": ["billing_partner_id"],
                "pivot_column_groupby": ["purchase_date:month"],
                "pivot_measures": ["__count", "net_revenue"],
            }
        },
    )
    browser.wait_for(".o_pivot table")
    browser.shot(out / "report-pivot-resellers.png")


if __name__ == "__main__":
    raise SystemExit(main())
