#!/usr/bin/env python3
"""Stand up, inspect and tear down the Sparkify Redshift warehouse, safely.

    python iac_setup.py create  [--serverless] [--open-to-world] [--set-target] [--auth iam]
    python iac_setup.py status  [--serverless]
    python iac_setup.py delete  [--serverless] [--yes] [--final-snapshot] [--keep-role]

``create`` makes (or reuses) an IAM role that Redshift assumes to read S3 (AWS-managed
AmazonS3ReadOnlyAccess and nothing else), a Redshift cluster -- or, with ``--serverless``, a
Redshift Serverless namespace and workgroup --, waits until it is available, opens the
database port to your own public IPv4 address only (or to ``[DWH] ALLOWED_CIDR``), and writes
``[CLUSTER] HOST`` and ``[IAM_ROLE] ARN`` back into dwh.cfg without touching anything else in
the file. ``status`` tells what exists and what it costs. ``delete`` removes all of it again.
Every command is idempotent: rerun it after an interruption and it finishes the job.

Exit codes: 0 done, 1 AWS refused or something is in the way, 2 bad configuration or usage,
130 interrupted. See docs/iac.md for the walk-through, the costs and the IAM policy the caller
needs. The steps themselves live in dwh/iac/.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dwh import cli
from dwh.cli import DEFAULT_CONFIG
from dwh.config import AUTH_METHODS
from dwh.iac import cfgfile, db_login, errors, ingress
from dwh.iac.cluster import check_offered, create_cluster, find_cluster_teardown, show_cluster
from dwh.iac.console import Console, confirm
from dwh.iac.context import Context
from dwh.iac.errors import IacError
from dwh.iac.role import S3_READ_POLICY, delete_role, ensure_role, foreign_role_error, inspect_role, show_role
from dwh.iac.serverless import create_serverless, find_serverless_teardown, get_workgroup, show_serverless
from dwh.iac.session import Aws, make_session
from dwh.iac.settings import IacConfig

DEFAULT_TIMEOUT_MINUTES = 30.0


def cmd_create(ctx: Context) -> int:
    cfg, console, aws, args = ctx.cfg, ctx.console, ctx.aws, ctx.args
    # 1. Validate everything the command needs before touching AWS.
    role_name = cfg.role_name()
    if args.serverless:
        spec = cfg.serverless()
        db = cfg.db(serverless=True)
    else:
        spec = cfg.cluster()
        db = cfg.db(serverless=False, node_type=spec.node_type)
    password = cfg.password()
    console.add_secret(password)
    cidr = ingress.resolve_cidr(cfg, args.open_to_world, ctx.public_ip, console)
    if not args.serverless:
        check_offered(aws.client("redshift"), spec, aws.region)

    # 2. The role Redshift assumes to read S3.
    role_arn = ensure_role(aws.client("iam"), role_name, console)

    # 3. The warehouse, waited for until it is available.
    create = create_serverless if args.serverless else create_cluster
    warehouse = create(ctx, role_arn, spec, db, password)
    if not warehouse.host:
        raise IacError(f"{warehouse.what} has no endpoint address yet; run create again in a minute")

    # 4. Let the caller (and nobody else) reach the port.
    if not warehouse.group_ids:
        raise IacError(f"{warehouse.what} has no VPC security group to open port {warehouse.port} on")
    ingress.ensure_ingress(aws.client("ec2"), warehouse.group_ids[0], warehouse.port, cidr, warehouse.marker, console)

    # 5. Write HOST and ARN (and TARGET and AUTH if asked) back into dwh.cfg, comments and all.
    login = db_login.login_keys(args.auth, args.serverless) if args.auth else None
    cfgfile.record_endpoint(cfg, warehouse.host, role_arn, args.set_target, console, login)
    if args.auth == "iam":
        name = cfg.serverless().workgroup if args.serverless else cfg.cluster_identifier()
        workgroup = get_workgroup(aws.client("redshift-serverless"), name) if args.serverless else None
        statement = db_login.login_statement(
            region=aws.region,
            account=role_arn.split(":")[4],
            name=name,
            db=db,
            workgroup_arn=workgroup["workgroupArn"] if workgroup else None,
        )
        db_login.show_login_statement(console, statement)

    # 6. What next, and what it costs.
    console.info("")
    console.info(f"Ready: {warehouse.what} in {aws.region}, {warehouse.cost}.")
    step = 1
    if IacConfig(cfg.path).get("WAREHOUSE", "TARGET", default="") != "redshift":
        console.info(
            f"  {step}. set [WAREHOUSE] TARGET = redshift in {cfg.path.name} (or rerun create with --set-target)"
        )
        step += 1
    config_arg = "" if Path(args.config).resolve() == DEFAULT_CONFIG else f" --config {args.config}"
    console.info(f"  {step}. python create_tables.py{config_arg}")
    console.info(f"  {step + 1}. python etl.py{config_arg}")
    flags = (" --serverless" if args.serverless else "") + config_arg
    console.info(
        f"When you are done: python iac_setup.py delete{flags}  (check with `python iac_setup.py status{flags}`)"
    )
    return 0


def cmd_status(ctx: Context) -> int:
    cfg, console, aws, args = ctx.cfg, ctx.console, ctx.aws, ctx.args
    mode = "Redshift Serverless" if args.serverless else "provisioned cluster"
    console.info(f"Sparkify warehouse, {mode}, region {aws.region} ({cfg.path})")
    role = show_role(aws.client("iam"), cfg.role_name(), console)
    host, group_ids, marker = show_serverless(ctx) if args.serverless else show_cluster(ctx)
    ingress.show_rules(aws.client("ec2"), group_ids, cfg.db_port_or_default(), marker, console)
    state = cfgfile.state_line(cfg, host, role.arn if role else None)
    console.info(f"  {cfg.path.name:<10} {state}")
    console.info(
        "  (the provisioned cluster is shown without --serverless)"
        if args.serverless
        else "  (Redshift Serverless resources are shown with --serverless)"
    )
    return 0


def cmd_delete(ctx: Context) -> int:
    cfg, console, aws, args = ctx.cfg, ctx.console, ctx.aws, ctx.args
    role_name = cfg.role_name()
    iam, ec2 = aws.client("iam"), aws.client("ec2")

    # 1. Find what is there, refusing to touch what is not ours.
    found = find_serverless_teardown(ctx) if args.serverless else find_cluster_teardown(ctx)
    rules = ingress.marked_rules(ec2, found.marker)
    role = None if args.keep_role else inspect_role(iam, role_name)
    our_role = role if role is not None and not role.problems else None
    plan = (
        [f"ingress rule {rule.label()}" for rule in rules]
        + found.items
        + ([f"IAM role {role_name} (and its {S3_READ_POLICY} attachment)"] if our_role else [])
    )
    if not plan:
        if role is not None:
            raise foreign_role_error(role, "delete")
        other = (
            "the provisioned cluster: run delete without --serverless"
            if args.serverless
            else "Redshift Serverless: run delete --serverless"
        )
        console.info(
            f"Nothing to delete in {aws.region}: {found.absent}, no ingress rule marked "
            f"'{found.marker}'" + ("" if args.keep_role else f", no IAM role {role_name}") + f". (For {other}.)"
        )
        return 0

    # 2. Ask.
    if not confirm(console, plan, args.yes):
        return 1

    # 3. Close the door, remove the warehouse, then the role.
    for rule in rules:
        ingress.revoke(ec2, rule)
        console.info(f"ingress: removed {rule.label()}")
    found.remove()
    if our_role:
        delete_role(iam, our_role, console)

    # 4. Clear the dwh.cfg values that now point at nothing.
    cfgfile.clear_endpoint(cfg, found.host, our_role.arn if our_role else None, console)
    if role is not None and our_role is None:
        raise foreign_role_error(role, "delete")
    console.info(
        "Done: nothing created by iac_setup.py is left running"
        + (" (the final snapshot is still stored and billed)." if args.final_snapshot else ".")
    )
    return 0


COMMANDS = {"create": cmd_create, "status": cmd_status, "delete": cmd_delete}


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        metavar="PATH",
        help="the configuration file (default: dwh.cfg next to this script)",
    )
    common.add_argument(
        "--profile", metavar="NAME", help="AWS named profile (overrides [AWS] PROFILE; AWS_PROFILE works too)"
    )
    common.add_argument("--region", metavar="NAME", help="AWS region (overrides [AWS] REGION)")
    common.add_argument(
        "--serverless",
        action="store_true",
        help="work on the Redshift Serverless namespace and workgroup named in "
        "[DWH] instead of the provisioned cluster",
    )

    parser = argparse.ArgumentParser(
        prog="iac_setup.py",
        description="Stand up, inspect and tear down the Sparkify Redshift warehouse "
        "(a provisioned cluster, or Redshift Serverless with --serverless).",
        epilog="Exit codes: 0 done, 1 AWS refused or something is in the way, 2 bad dwh.cfg "
        "or usage, 130 interrupted. Walk-through, costs and the IAM policy you need: "
        "docs/iac.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser(
        "create",
        parents=[common],
        help="create or finish creating the warehouse",
        description="Create (or reuse) the IAM role, the cluster or Serverless workgroup, wait "
        "until it is available, open its port to your IP, and write [CLUSTER] HOST "
        "and [IAM_ROLE] ARN into dwh.cfg. Safe to rerun.",
    )
    create.add_argument(
        "--open-to-world",
        action="store_true",
        help="allow connections from 0.0.0.0/0 instead of your own IP (not recommended; prints a warning)",
    )
    create.add_argument("--set-target", action="store_true", help="also set [WAREHOUSE] TARGET = redshift in dwh.cfg")
    create.add_argument(
        "--auth",
        choices=AUTH_METHODS,
        help="also set [CLUSTER] AUTH in dwh.cfg: iam logs in with temporary credentials AWS issues for your "
        "IAM identity, no stored password (prints the IAM statement you need; docs/iac.md)",
    )

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show what exists and what it costs",
        description="Show the IAM role, the cluster (or with --serverless the namespace and "
        "workgroup), its state, endpoint, size, ingress rules and approximate cost.",
    )
    status.set_defaults(timeout=DEFAULT_TIMEOUT_MINUTES)  # status never waits

    delete = commands.add_parser(
        "delete",
        parents=[common],
        help="delete everything create made",
        description="Remove the ingress rule, the cluster (or Serverless workgroup and "
        "namespace) and the IAM role. Asks for confirmation unless --yes.",
    )
    delete.add_argument(
        "-y", "--yes", action="store_true", help="do not ask for confirmation (required when stdin is not a terminal)"
    )
    delete.add_argument(
        "--final-snapshot", action="store_true", help="keep a final snapshot (billed until you delete it)"
    )
    delete.add_argument(
        "--keep-role", action="store_true", help="keep the IAM role (e.g. when the other deployment kind uses it)"
    )

    for waiting, what in ((create, "the warehouse"), (delete, "the deletion")):
        waiting.add_argument(
            "--timeout",
            type=_positive_minutes,
            default=DEFAULT_TIMEOUT_MINUTES,
            metavar="MINUTES",
            help=f"how long to wait for {what} (default {DEFAULT_TIMEOUT_MINUTES:g})",
        )
    return parser


def main(
    argv: list[str] | None = None,
    *,
    aws: Aws | None = None,
    sleep: Callable[[float], None] | None = None,
    public_ip: Callable[[], str | None] | None = None,
) -> int:
    """Run one command. ``aws``, ``sleep`` and ``public_ip`` are for tests."""
    args = build_parser().parse_args(argv)
    console = Console()

    def body() -> int:
        nonlocal aws
        cfg = IacConfig(Path(args.config))
        settings = cfg.aws()
        exposed = cfg.exposed_secrets()
        if exposed:
            console.warn(exposed)
        for secret in (settings.key, settings.secret, cfg.get("CLUSTER", "DB_PASSWORD", default="")):
            console.add_secret(secret)
        if aws is None:
            aws = Aws(make_session(settings, args.profile, args.region, console))
        ctx = Context(
            args=args,
            cfg=cfg,
            aws=aws,
            console=console,
            sleep=sleep or time.sleep,
            public_ip=public_ip or ingress.detect_public_ip,
        )
        return COMMANDS[args.command](ctx)

    return cli.exit_code(
        body,
        explainers=(lambda exc: errors.explain(exc, aws, args.profile),),
        error=console.error,
        interrupted=errors.INTERRUPTED,
    )


if __name__ == "__main__":
    sys.exit(main())
