"""The ``esd`` command line: talk to a CIS instance (or the simulator) from a shell.

    esd --config instance.json check
    esd --config instance.json order --product EP2-06606:en-US --customer ACCOUNT --json
    python -m microsoft_esd simulator --port 8443 --state /tmp/esd-sim

Every command accepts ``--json`` after its own arguments; ``--json`` prints the contract's objects
with the contract's field names. Errors go to stderr with a non-zero exit (1: CIS or simulator
refused; 2: usage or configuration).
"""

# A command line: what it prints on stdout and stderr is its interface, not a log.
# pylint: disable=print-used

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import uuid

from . import contract
from .client import CisClient
from .config import InstanceConfig
from .errors import ConfigurationError, EsdError

EXIT_ERROR = 1
EXIT_USAGE = 2


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON (contract names)"
    )
    parser = argparse.ArgumentParser(
        prog="esd", description="Microsoft CIS ESD client and simulator.", parents=[common]
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("ESD_CONFIG"),
        help="instance configuration (JSON; the simulator writes STATE/instance.json). "
        "Default: $ESD_CONFIG",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulator", parents=[common], help="run the HTTPS CIS simulator")
    sim.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    sim.add_argument("--state", required=True, help="state folder (created if missing)")
    sim.add_argument("--country", default="US")
    sim.add_argument("--language", default="en-US")
    sim.add_argument(
        "--extra-products", type=int, default=0, help="add N synthetic products per catalog"
    )

    sub.add_parser("check", parents=[common], help="authenticate and read one catalog page")

    cat = sub.add_parser("catalog", parents=[common], help="list the catalog (every page)")
    cat.add_argument("--country")
    cat.add_argument("--language")

    acc = sub.add_parser("account", parents=[common], help="create or update a CIS account")
    acc.add_argument("--role", required=True, choices=["user", "reseller"])
    acc.add_argument("--email", required=True)
    acc.add_argument("--name", required=True, help="company name")
    acc.add_argument("--external-id", help="your reference (default: the email)")
    acc.add_argument("--country")
    acc.add_argument("--language")

    order = sub.add_parser("order", parents=[common], help="order one license")
    order.add_argument("--product", required=True, help="CIS productId")
    order.add_argument("--customer", required=True, help="customer accountId")
    order.add_argument("--reseller", help="reseller accountId")
    order.add_argument(
        "--request-id", help="idempotency key; the same id returns the same order (default: new)"
    )
    order.add_argument("--reference", help="external reference (e.g. the sale order)")

    status = sub.add_parser("status", parents=[common], help="status of one license")
    status.add_argument("license_id")

    changes = sub.add_parser("changes", parents=[common], help="licenses changed since a date")
    changes.add_argument("--since", required=True, help="ISO date/time, UTC")

    ret = sub.add_parser("return", parents=[common], help="return an unredeemed license")
    ret.add_argument("license_id")
    ret.add_argument("--request-id")

    simadm = sub.add_parser("sim", parents=[common], help="the simulator's admin surface")
    simsub = simadm.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    redeem = simsub.add_parser("redeem", parents=[common], help="redeem a license (end customer)")
    redeem.add_argument("license_id")
    force = simsub.add_parser("set-status", parents=[common], help="force a license's status")
    force.add_argument("license_id")
    force.add_argument("token_status", choices=sorted(contract.TOKEN_STATUS))
    force.add_argument("--return-status", choices=sorted(contract.RETURN_STATUS))
    simsub.add_parser("stats", parents=[common], help="connections, tokens, orders...")
    simsub.add_parser("licenses", parents=[common], help="every license the simulator issued")
    fault = simsub.add_parser("fault", parents=[common], help="inject faults (or --clear)")
    fault.add_argument("--clear", action="store_true", help="remove every fault first")
    fault.add_argument("--latency-ms", type=int)
    fault.add_argument("--error-rate", type=float, help="share of requests answered 503 (0..1)")
    fault.add_argument(
        "--rate-limit-rate", type=float, help="share of requests answered 429 (0..1)"
    )
    fault.add_argument(
        "--drop-rate", type=float, help="share of requests processed, then dropped (0..1)"
    )
    fault.add_argument("--rate-limit", type=int, metavar="N", help="next N requests get 429")
    fault.add_argument("--retry-after", type=int, metavar="SECONDS")
    fault.add_argument("--fail", type=int, metavar="N", help="next N requests fail")
    fault.add_argument("--fail-status", type=int, metavar="STATUS")
    fault.add_argument("--fail-skip", type=int, metavar="N", help="let N requests pass first")
    fault.add_argument("--timeout", type=int, metavar="N", help="next N answers are held back")
    fault.add_argument("--timeout-seconds", type=float)
    fault.add_argument("--malformed", type=int, metavar="N", help="next N bodies are not JSON")
    fault.add_argument(
        "--drop-after-commit",
        type=int,
        metavar="N",
        help="next N: commit, then drop the connection",
    )
    fault.add_argument("--paths", help="only paths containing this text (e.g. orders)")
    simcat = simsub.add_parser("catalog", parents=[common], help="change the catalog")
    simcat.add_argument(
        "op", choices=["add", "reprice", "rename", "discontinue", "remove", "reset"]
    )
    simcat.add_argument("product_id", nargs="?", help="not for reset")
    simcat.add_argument("--title")
    simcat.add_argument("--amount", type=float)
    simcat.add_argument("--country")
    simcat.add_argument("--language")
    return parser


def _print(args, payload, human):
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(human)


def _load_config(args):
    if not args.config:
        raise ConfigurationError("no configuration: pass --config FILE or set ESD_CONFIG")
    return InstanceConfig.from_file(args.config)


def _license_lines(lic):
    lines = [
        f"license   {lic.license_id}",
        f"status    {contract.WIRE_TOKEN_STATUS[lic.token_status]}"
        f" (return: {contract.WIRE_RETURN_STATUS[lic.return_status]})",
    ]
    if lic.token:
        lines.append(f"token     {lic.token}")
    if lic.activation_link:
        lines.append(f"activate  {lic.activation_link}")
    if lic.activation_date:
        lines.append(f"activated {contract.format_datetime(lic.activation_date)}")
    return "\n".join(lines)


def _run_simulator(args):
    from .simulator import Simulator  # noqa: PLC0415 - only this command needs the server

    sim = Simulator(
        args.state,
        args.port,
        extra_products=args.extra_products,
        country=args.country,
        language=args.language,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"CIS simulator on {sim.url} (state {args.state})", flush=True)
    print(f"client configuration: {sim.config_path}", flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops it
            sim.serve_forever()
    finally:
        sim.server.server_close()
    return 0


def _run_admin(args, config):
    from .simulator.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient(config)
    cmd = args.sim_command
    if cmd == "redeem":
        lic = admin.redeem(args.license_id)
        return _print(args, lic, f"license {lic['licenseId']} redeemed on {lic['activationDate']}")
    if cmd == "set-status":
        lic = admin.force_status(args.license_id, args.token_status, args.return_status)
        return _print(args, lic, f"license {lic['licenseId']} is now {lic['tokenStatus']}")
    if cmd == "stats":
        stats = admin.stats()
        return _print(args, stats, "\n".join(f"{k:14} {v}" for k, v in stats.items()))
    if cmd == "licenses":
        items = admin.licenses()
        human = "\n".join(
            f"{i['licenseId']}  {i['tokenStatus']:<14} {i['productId']}" for i in items
        )
        return _print(args, items, human or "no license yet")
    if cmd == "fault":
        if args.clear:
            admin.clear_faults()
        names = [
            "latency_ms",
            "error_rate",
            "rate_limit_rate",
            "drop_rate",
            "rate_limit",
            "retry_after",
            "fail",
            "fail_status",
            "fail_skip",
            "timeout",
            "timeout_seconds",
            "malformed",
            "drop_after_commit",
            "paths",
        ]
        values = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
        faults = admin.faults(**values) if values else admin.faults()
        return _print(args, faults, "\n".join(f"{k:18} {v}" for k, v in faults.items()))
    if cmd == "catalog" and args.op == "reset":
        return _print(args, admin.reset_catalog(), "catalog reset to the seeded one")
    if cmd == "catalog":
        item = admin.catalog(
            args.op, args.product_id, args.title, args.amount, args.country, args.language
        )
        return _print(args, item, f"{args.op}: {item['productId']} {item['title']}")
    raise ConfigurationError(f"unknown sim command {cmd}")


def _run(args):
    if args.command == "simulator":
        return _run_simulator(args)
    config = _load_config(args)
    if args.command == "sim":
        return _run_admin(args, config)
    with CisClient(config) as client:
        if args.command == "check":
            report = client.check()
            report["tokenAcquisitions"] = client.token_acquisitions
            human = (
                f"OK: authenticated as {config.client_id} (tenant {config.tenant}); catalog "
                f"{config.country}/{config.language} answered {report['catalogItems']} items "
                f"in {report['elapsedMs']} ms"
            )
            return _print(args, report, human)
        if args.command == "catalog":
            items = list(client.iter_catalog(args.country, args.language))
            human = "\n".join(
                f"{i.product_id:<22} {contract.WIRE_CATALOG_STATUS[i.status]:<13}"
                f" {i.price:>9.2f} {i.currency}  {i.title}"
                for i in items
            )
            return _print(args, [i.to_wire() for i in items], human + f"\n{len(items)} products")
        if args.command == "account":
            account = client.create_account(
                args.external_id or args.email,
                args.role,
                args.name,
                args.email,
                args.country,
                args.language,
            )
            human = f"account {account.account_id} ({contract.WIRE_ACCOUNT_ROLE[account.role]})"
            return _print(args, account.to_wire(), human)
        if args.command == "order":
            request_id = args.request_id or str(uuid.uuid4())
            order = client.order_license(
                args.product, args.customer, args.reseller, args.reference, request_id=request_id
            )
            human = f"order     {order.order_id} (request id {request_id})\n" + "\n".join(
                _license_lines(lic) for lic in order.licenses
            )
            return _print(args, order.to_wire(), human)
        if args.command == "status":
            lic = client.get_license(args.license_id)
            return _print(args, lic.to_wire(), _license_lines(lic))
        if args.command == "changes":
            since = contract.parse_datetime(args.since, "--since")
            items = list(client.iter_license_changes(since))
            human = "\n".join(
                f"{i.license_id}  {contract.WIRE_TOKEN_STATUS[i.token_status]}" for i in items
            )
            return _print(args, [i.to_wire() for i in items], human or "no change")
        if args.command == "return":
            lic = client.return_license(args.license_id, request_id=args.request_id)
            return _print(args, lic.to_wire(), _license_lines(lic))
    raise ConfigurationError(f"unknown command {args.command}")


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        _run(args)
    except ConfigurationError as exc:
        print(f"esd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EsdError as exc:
        prefix = f"[{exc.code}] " if exc.code else ""
        print(f"esd: error: {prefix}{exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return 0
