"""The reseller API's test kit: real API keys, HTTP calls whose every answer is checked against
docs/reseller-api.openapi.json, and a webhook receiver on 127.0.0.1."""

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from jsonschema import Draft202012Validator

from odoo.modules.module import get_module_path
from odoo.tests import HttpCase, new_test_user

from .common import connected_instance, customer_company, office_for_sale, start_simulator

OPENAPI_PATH = Path(get_module_path("microsoft_esd"), "docs", "reseller-api.openapi.json")
PREFIX = "/api/esd/v1"


class OpenApi:
    """docs/reseller-api.openapi.json, and the check of one answer against it."""

    def __init__(self, path=OPENAPI_PATH):
        self.doc = json.loads(path.read_text())
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), template)
            for template in self.doc["paths"]
        ]

    def resolve(self, node):
        """``node`` with its local $refs replaced by what they point to."""
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.doc
                for part in node["$ref"].removeprefix("#/").split("/"):
                    target = target[part]
                return self.resolve(target)
            return {key: self.resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.resolve(value) for value in node]
        return node

    def check(self, method, path, response):
        """Fail unless the answer (status, content type, body) is one the document declares."""
        template = next((t for regex, t in self.routes if regex.match(path)), None)
        assert template, f"{path} is not in the OpenAPI document"
        operation = self.doc["paths"][template].get(method.lower())
        assert operation, f"{method} {template} is not in the OpenAPI document"
        status = str(response.status_code)
        declared = operation["responses"].get(status) or operation["responses"].get(
            status[0] + "XX"
        )
        assert declared, f"{method} {template} does not declare {status}"
        declared = self.resolve(declared)
        content_type = response.headers.get("Content-Type", "").split(";")[0]
        assert content_type in declared["content"], (
            f"{method} {template} {status}: {content_type} not declared"
        )
        schema = declared["content"][content_type]["schema"]
        Draft202012Validator(schema).validate(response.json())
        return template


OPENAPI = OpenApi()


def make_api_key(user, name="test key"):
    """An API key of ``user``, as its owner makes it in My Account (the clear key, once)."""
    return user.env["res.users.apikeys"].with_user(user).sudo()._generate(None, name, None)


class Receiver:
    """A webhook receiver on 127.0.0.1: records each message; answers 500 to the first
    ``failures`` ones, then 204."""

    def __init__(self, failures=0):
        self.messages, self.failures, self.lock = [], failures, threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    failing = receiver.failures > 0
                    receiver.failures -= 1 if failing else 0
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    receiver.messages.append((headers, body, not failing))
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def accepted(self, event=None):
        """(headers, body, payload) of the messages answered 2xx, of ``event`` if given."""
        with self.lock:
            found = [(h, b, json.loads(b)) for h, b, ok in self.messages if ok]
        return [m for m in found if event is None or m[2]["type"] == event]


class ApiCase(HttpCase):
    """A connected instance on a simulator, Office for sale, and Fabrikam, a reseller whose
    portal user ``api_user`` is an API user with an API key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = start_simulator(cls)
        cls.instance = connected_instance(cls.env, cls.simulator.config_path)
        cls.office = office_for_sale(cls.env, 100)
        cls.sku = cls.office.esd_sku
        cls.env["ir.config_parameter"].set_param("microsoft_esd.webhook_allow_loopback", "1")
        cls.manager = new_test_user(
            cls.env, "api_esd_manager", groups="microsoft_esd.group_esd_manager"
        )
        cls.reseller = customer_company(cls.env, "Fabrikam Reseller", esd_role="reseller")
        cls.api_user = cls.api_user_of(cls.reseller, "fabrikam_api")
        cls.key = make_api_key(cls.api_user)

    @classmethod
    def api_user_of(cls, company, login):
        """A portal login of ``company`` that an ESD manager made an API user."""
        user = new_test_user(cls.env, login, groups="base.group_portal", name=login.title())
        user.partner_id.parent_id = company
        user.partner_id.with_user(cls.manager).action_esd_allow_api()
        return user

    def call(
        self,
        method,
        path,
        key=None,
        body=None,
        headers=None,
        idempotency=None,
        raw=None,
        check=True,
    ):
        """One HTTP call of the API (the answer checked against the OpenAPI document, unless
        ``check`` is False: a method the document does not have)."""
        headers = dict(headers or {})
        if key is not False:
            headers["Authorization"] = f"Bearer {key or self.key}"
        if method == "POST" and idempotency is not False and (body, raw) != (None, None):
            headers["Idempotency-Key"] = idempotency or str(uuid.uuid4())
        self.env.flush_all()  # the server's cursor is the test's: it sees what the test wrote
        response = requests.request(
            method,
            f"{self.base_url()}{PREFIX}{path}",
            json=body if raw is None else None,
            data=raw,
            headers=headers,
            timeout=60,
            allow_redirects=False,
        )
        if check:
            OPENAPI.check(method, path.split("?")[0], response)
        self.env.invalidate_all()  # and the test sees what the server wrote
        return response

    def problem(self, response, status, slug):
        """Assert ``response`` is the problem ``slug`` with ``status``; its body."""
        self.assertEqual(response.status_code, status, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/problem+json")
        body = response.json()
        self.assertEqual(body["type"], f"{PREFIX}/problems/{slug}")
        return body
