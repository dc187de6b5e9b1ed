"""Redshift Serverless: a namespace (the data) and a workgroup (the compute and endpoint);
create or reuse them, wait for them, show them, delete them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from dwh.iac.context import Check, Context, Teardown, Warehouse, snapshot_note
from dwh.iac.errors import IacError, error_code
from dwh.iac.ingress import default_security_group
from dwh.iac.ownership import MANAGED_BY, is_managed, our_tags, rule_marker
from dwh.iac.settings import DbSpec, ServerlessSpec

SERVERLESS_POLL_SECONDS = 15
#: Redshift Serverless, us-east-1, USD per RPU-hour, billed per second with a 60-second minimum
#: while queries run, nothing while idle (storage aside). Same sources as the node prices in
#: dwh/iac/cluster.py, checked 2026-11.
SERVERLESS_USD_PER_RPU_HOUR = 0.375


def _get(serverless, kind: str, name: str) -> dict | None:
    """GetNamespace or GetWorkgroup (``kind``): the resource named ``name``, or None."""
    try:
        return getattr(serverless, f"get_{kind}")(**{f"{kind}Name": name})[kind]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def get_namespace(serverless, name: str) -> dict | None:
    return _get(serverless, "namespace", name)


def get_workgroup(serverless, name: str) -> dict | None:
    return _get(serverless, "workgroup", name)


def serverless_managed(serverless, arn: str) -> bool:
    return is_managed(serverless.list_tags_for_resource(resourceArn=arn).get("tags"))


def not_managed_serverless_error(kind: str, name: str, key: str, doing: str) -> IacError:
    return IacError(
        f"a Redshift Serverless {kind} named {name} already exists but was not "
        f"created by iac_setup.py (no tag {MANAGED_BY[0]}={MANAGED_BY[1]}); "
        f"refusing to {doing} it. Set another [DWH] {key}, or tag it to adopt it"
    )


def _role_arns(namespace: dict) -> list[str]:
    # GetNamespace lists roles as strings, sometimes as "IamRole(applyStatus=..., iamRoleArn=arn)".
    arns = []
    for entry in namespace.get("iamRoles", []):
        match = re.search(r"arn:[^,)\s]+", str(entry))
        if match:
            arns.append(match.group(0))
    return arns


def serverless_cost(base_rpu: int) -> str:
    per_hour = base_rpu * SERVERLESS_USD_PER_RPU_HOUR
    return (
        f"about ${per_hour:.2f} per hour of query time at the base {base_rpu} RPU "
        f"(~${SERVERLESS_USD_PER_RPU_HOUR}/RPU-hour, approximate us-east-1 price, per second "
        "with a 60 s minimum per query); nothing while idle except storage"
    )


def _state_check(serverless, kind: str, name: str, want_gone: bool) -> Check:
    """A ``check`` for Context.wait: the namespace or workgroup is AVAILABLE (or gone)."""

    def check() -> tuple[bool, str]:
        found = _get(serverless, kind, name)
        if found is None:
            return want_gone, "gone"
        state = found.get("status", "unknown")
        if not want_gone and state == "DELETING":
            raise IacError(
                f"Redshift Serverless {kind} {name} is being deleted; wait until "
                "`python iac_setup.py status --serverless` shows it gone, then "
                "run create again"
            )
        return (not want_gone and state == "AVAILABLE"), state

    return check


def _wait(ctx: Context, kind: str, name: str, *, on_timeout: str, want_gone: bool = False) -> None:
    check = _state_check(ctx.aws.client("redshift-serverless"), kind, name, want_gone)
    ctx.wait(
        check,
        what=("deletion of " if want_gone else "") + f"{kind} {name}",
        delay_s=SERVERLESS_POLL_SECONDS,
        on_timeout=on_timeout,
    )


def create_serverless(ctx: Context, role_arn: str, spec: ServerlessSpec, db: DbSpec, password: str) -> Warehouse:
    """Create the namespace and workgroup, or reuse ours; return the workgroup once AVAILABLE."""
    serverless = ctx.aws.client("redshift-serverless")
    tags = our_tags("key", "value")
    on_timeout = "run `python iac_setup.py create --serverless` again to keep waiting"

    namespace = get_namespace(serverless, spec.namespace)
    if namespace is None:
        serverless.create_namespace(
            namespaceName=spec.namespace,
            adminUsername=db.user,
            adminUserPassword=password,
            dbName=db.name,
            defaultIamRoleArn=role_arn,
            iamRoles=[role_arn],
            tags=tags,
        )
        ctx.console.info(f"namespace {spec.namespace}: created")
    else:
        if not serverless_managed(serverless, namespace["namespaceArn"]):
            raise not_managed_serverless_error("namespace", spec.namespace, "SERVERLESS_NAMESPACE", "use")
        ctx.console.info(f"namespace {spec.namespace}: exists ({namespace.get('status')}), reused")
    _wait(ctx, "namespace", spec.namespace, on_timeout=on_timeout)
    if namespace is not None and role_arn not in _role_arns(namespace):
        serverless.update_namespace(
            namespaceName=spec.namespace,
            defaultIamRoleArn=role_arn,
            iamRoles=sorted(set(_role_arns(namespace)) | {role_arn}),
        )
        ctx.console.info(f"namespace {spec.namespace}: attached IAM role {role_arn}")
        _wait(ctx, "namespace", spec.namespace, on_timeout=on_timeout)

    workgroup = get_workgroup(serverless, spec.workgroup)
    if workgroup is None:
        group_id = default_security_group(ctx.aws.client("ec2"), ctx.aws.region)
        serverless.create_workgroup(
            workgroupName=spec.workgroup,
            namespaceName=spec.namespace,
            baseCapacity=spec.base_rpu,
            publiclyAccessible=True,
            port=db.port,
            securityGroupIds=[group_id],
            tags=tags,
        )
        ctx.console.info(
            f"workgroup {spec.workgroup}: creating with base capacity "
            f"{spec.base_rpu} RPU (usually a few minutes); "
            f"{serverless_cost(spec.base_rpu)}"
        )
    else:
        if not serverless_managed(serverless, workgroup["workgroupArn"]):
            raise not_managed_serverless_error("workgroup", spec.workgroup, "SERVERLESS_WORKGROUP", "use")
        if workgroup.get("namespaceName") != spec.namespace:
            raise IacError(
                f"workgroup {spec.workgroup} belongs to namespace "
                f"{workgroup.get('namespaceName')}, not {spec.namespace}; fix [DWH] "
                "SERVERLESS_NAMESPACE or SERVERLESS_WORKGROUP"
            )
        ctx.console.info(f"workgroup {spec.workgroup}: exists ({workgroup.get('status')}), reused")
    _wait(ctx, "workgroup", spec.workgroup, on_timeout=on_timeout)
    workgroup = get_workgroup(serverless, spec.workgroup)
    if workgroup is None:
        raise IacError(f"workgroup {spec.workgroup} disappeared while we waited for it")
    if not workgroup.get("publiclyAccessible", False):
        ctx.console.warn(
            f"workgroup {spec.workgroup} is not publicly accessible, so it cannot "
            "be reached from outside its VPC: aws redshift-serverless "
            f"update-workgroup --workgroup-name {spec.workgroup} "
            "--publicly-accessible"
        )
    endpoint = workgroup.get("endpoint") or {}
    ctx.console.info(
        f"workgroup {spec.workgroup}: AVAILABLE at {endpoint.get('address')}:"
        f"{endpoint.get('port', workgroup.get('port'))}"
    )
    return Warehouse(
        what=f"workgroup {spec.workgroup}",
        host=endpoint.get("address"),
        port=int(endpoint.get("port") or workgroup.get("port") or db.port),
        group_ids=list(workgroup.get("securityGroupIds") or []),
        marker=rule_marker("workgroup", spec.workgroup),
        cost=serverless_cost(spec.base_rpu),
    )


def delete_serverless(
    ctx: Context, workgroup: dict | None, namespace: dict | None, spec: ServerlessSpec, final_snapshot: bool
) -> None:
    serverless = ctx.aws.client("redshift-serverless")
    on_timeout = "run `python iac_setup.py delete --serverless` again to keep waiting"
    if workgroup is not None:
        if workgroup.get("status") != "DELETING":
            serverless.delete_workgroup(workgroupName=spec.workgroup)
        ctx.console.info(f"workgroup {spec.workgroup}: deleting")
        _wait(ctx, "workgroup", spec.workgroup, on_timeout=on_timeout, want_gone=True)
        ctx.console.info(f"workgroup {spec.workgroup}: deleted")
    if namespace is not None:
        if namespace.get("status") != "DELETING":
            params = {"namespaceName": spec.namespace}
            if final_snapshot:
                snapshot = f"{spec.namespace}-final-{datetime.now(UTC):%Y%m%d-%H%M%S}"
                params["finalSnapshotName"] = snapshot
                ctx.console.info(
                    f"namespace {spec.namespace}: keeping final snapshot {snapshot} "
                    "(snapshot storage is billed until you delete it)"
                )
            serverless.delete_namespace(**params)
        ctx.console.info(f"namespace {spec.namespace}: deleting")
        _wait(ctx, "namespace", spec.namespace, on_timeout=on_timeout, want_gone=True)
        ctx.console.info(f"namespace {spec.namespace}: deleted")


def show_serverless(ctx: Context) -> tuple[str | None, list[str], str]:
    """Print the namespace and workgroup status lines; return (host, security groups, marker)."""
    console = ctx.console
    spec = ctx.cfg.serverless()
    marker = rule_marker("workgroup", spec.workgroup)
    serverless = ctx.aws.client("redshift-serverless")
    namespace = get_namespace(serverless, spec.namespace)
    workgroup = get_workgroup(serverless, spec.workgroup)
    console.info(f"  Namespace  {spec.namespace}: " + (namespace.get("status", "?") if namespace else "not found"))
    if workgroup is None:
        console.info(f"  Workgroup  {spec.workgroup}: not found")
        console.info(
            "  Cost       nothing for compute" + ("; the namespace's storage is still billed" if namespace else "")
        )
        return None, [], marker
    endpoint = workgroup.get("endpoint") or {}
    access = "publicly accessible" if workgroup.get("publiclyAccessible") else "VPC only"
    console.info(
        f"  Workgroup  {spec.workgroup}: {workgroup.get('status')}, base capacity "
        f"{workgroup.get('baseCapacity')} RPU, {access}"
    )
    console.info(f"  Endpoint   {endpoint.get('address')}:{endpoint.get('port', workgroup.get('port'))}")
    rpu = int(workgroup.get("baseCapacity") or spec.base_rpu)
    console.info(f"  Cost       {serverless_cost(rpu)}")
    return endpoint.get("address"), list(workgroup.get("securityGroupIds") or []), marker


def find_serverless_teardown(ctx: Context) -> Teardown:
    """The workgroup and namespace delete would remove (refusing any that is not ours)."""
    spec = ctx.cfg.serverless()
    serverless = ctx.aws.client("redshift-serverless")
    workgroup = get_workgroup(serverless, spec.workgroup)
    namespace = get_namespace(serverless, spec.namespace)
    if workgroup and not serverless_managed(serverless, workgroup["workgroupArn"]):
        raise not_managed_serverless_error("workgroup", spec.workgroup, "SERVERLESS_WORKGROUP", "delete")
    if namespace and not serverless_managed(serverless, namespace["namespaceArn"]):
        raise not_managed_serverless_error("namespace", spec.namespace, "SERVERLESS_NAMESPACE", "delete")
    items = []
    if workgroup:
        items.append(f"Redshift Serverless workgroup {spec.workgroup} ({workgroup.get('status')})")
    if namespace:
        items.append(
            f"Redshift Serverless namespace {spec.namespace} and all its data {snapshot_note(ctx.args.final_snapshot)}"
        )

    def remove() -> None:
        delete_serverless(ctx, workgroup, namespace, spec, ctx.args.final_snapshot)

    return Teardown(
        items,
        rule_marker("workgroup", spec.workgroup),
        ((workgroup or {}).get("endpoint") or {}).get("address"),
        f"no workgroup {spec.workgroup}, no namespace {spec.namespace}",
        remove,
    )
