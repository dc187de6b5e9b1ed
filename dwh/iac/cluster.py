"""The provisioned Redshift cluster: create or reuse it, wait for it, show it, delete it."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError, WaiterError

from dwh.iac.context import Check, Context, Teardown, Warehouse, snapshot_note
from dwh.iac.errors import IacError, error_code
from dwh.iac.ingress import default_security_group
from dwh.iac.ownership import MANAGED_BY, is_managed, our_tags, rule_marker
from dwh.iac.settings import ClusterSpec, DbSpec

CLUSTER_POLL_SECONDS = 30

#: Cluster states from which Redshift does not recover by waiting.
FAILED_CLUSTER_STATES = frozenset({"hardware-failure", "storage-full"})

#: Approximate on-demand prices in USD per node-hour, us-east-1 (N. Virginia; us-west-2 lists
#: the same prices), compute only: RA3 managed storage (~$0.024/GB-month) and snapshots are
#: billed on top. Sources: https://aws.amazon.com/redshift/pricing/ ("start small at $0.25 per
#: hour"), and public write-ups quoting that page in 2025-2026 (ra3.4xlarge $3.26/hour, May
#: 2026; ra3.large $0.649/hour in eu-central-1, which is ~1.2x us-east-1). Checked 2026-11.
#: Other regions cost more or less; treat these as the order of magnitude, not a quote.
NODE_PRICE_USD_PER_HOUR = {
    "dc2.large": 0.25,
    "dc2.8xlarge": 4.80,
    "ra3.large": 0.543,
    "ra3.xlplus": 1.086,
    "ra3.4xlarge": 3.26,
    "ra3.16xlarge": 13.04,
}


def find_cluster(redshift, identifier: str) -> dict | None:
    try:
        return redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
    except ClientError as exc:
        if error_code(exc) == "ClusterNotFound":
            return None
        raise


def cluster_group_ids(cluster: dict) -> list[str]:
    return [
        g["VpcSecurityGroupId"]
        for g in cluster.get("VpcSecurityGroups", [])
        if g.get("Status", "active") in ("active", "adding")
    ]


def cluster_cost_per_hour(node_type: str, nodes: int) -> float | None:
    price = NODE_PRICE_USD_PER_HOUR.get(node_type)
    return None if price is None else price * nodes


def describe_cluster_cost(node_type: str, nodes: int) -> str:
    total = cluster_cost_per_hour(node_type, nodes)
    if total is None:
        return f"{nodes} x {node_type}: no price on file; see https://aws.amazon.com/redshift/pricing/"
    return (
        f"about ${total:.2f}/hour (${total * 24:.0f}/day) while it exists: {nodes} x "
        f"{node_type} at ~${NODE_PRICE_USD_PER_HOUR[node_type]}/node-hour "
        "(approximate us-east-1 on-demand compute price; storage extra)"
    )


def check_offered(redshift, spec: ClusterSpec, region: str) -> None:
    """Refuse a node type or cluster type the region does not offer, asking AWS rather than assuming.

    One line names the key and what the region offers (DescribeOrderableClusterOptions).
    """
    pages = redshift.get_paginator("describe_orderable_cluster_options")
    options = [o for page in pages.paginate(NodeType=spec.node_type) for o in page["OrderableClusterOptions"]]
    if not options:
        offered = sorted({o["NodeType"] for page in pages.paginate() for o in page["OrderableClusterOptions"]})
        raise IacError(
            f"dwh.cfg: [DWH] NODE_TYPE {spec.node_type} is not offered in {region}; "
            f"it offers {', '.join(offered) or 'no node type to this account'}"
        )
    cluster_types = sorted({o["ClusterType"] for o in options})
    if spec.cluster_type not in cluster_types:
        raise IacError(
            f"dwh.cfg: [DWH] CLUSTER_TYPE {spec.cluster_type} is not offered for {spec.node_type} in {region}; "
            f"it offers {' and '.join(cluster_types)}"
        )


def not_managed_cluster_error(identifier: str, doing: str) -> IacError:
    return IacError(
        f"a cluster named {identifier} already exists but was not created by iac_setup.py (no "
        f"tag {MANAGED_BY[0]}={MANAGED_BY[1]}); refusing to {doing} it. Set another [DWH] "
        f"CLUSTER_IDENTIFIER, or adopt it with `aws redshift create-tags --resource-name "
        f"<cluster ARN> --tags Key={MANAGED_BY[0]},Value={MANAGED_BY[1]}`"
    )


def cluster_state_problem(identifier: str, state: str) -> str | None:
    """Why a cluster in ``state`` will never become available, or None."""
    if state in FAILED_CLUSTER_STATES or state.startswith("incompatible-"):
        return (
            f"cluster {identifier} is in the failed state '{state}' and will not become "
            "available; look at its events in the Redshift console, then run "
            "`python iac_setup.py delete` and create it again"
        )
    if state in ("deleting", "final-snapshot"):
        return (
            f"cluster {identifier} is being deleted ({state}); wait until "
            "`python iac_setup.py status` shows it gone, then run create again"
        )
    if state == "paused":
        return (
            f"cluster {identifier} is paused; resume it (aws redshift resume-cluster "
            f"--cluster-identifier {identifier}) and run create again"
        )
    return None


def cluster_state_check(redshift, identifier: str, waiter_name: str, *, fail_on_failed_state: bool = True) -> Check:
    """A ``check`` for Context.wait built on a boto3 waiter run one attempt at a time.

    One attempt per call (WaiterConfig MaxAttempts=1) lets us print progress between
    attempts, spot failed states at once instead of waiting out the timeout, and sleep with
    an injectable function.
    """
    waiter = redshift.get_waiter(waiter_name)
    target = "available" if waiter_name == "cluster_available" else "deleted"

    def check() -> tuple[bool, str]:
        try:
            waiter.wait(ClusterIdentifier=identifier, WaiterConfig={"Delay": 1, "MaxAttempts": 1})
            return True, target
        except WaiterError as exc:
            response = exc.last_response or {}
            error = response.get("Error")
            if error and error.get("Code") != "ClusterNotFound":
                raise ClientError(response, "DescribeClusters") from None
            clusters = response.get("Clusters") or []
            state = clusters[0].get("ClusterStatus", "unknown") if clusters else "not visible yet"
            if target == "available" and cluster_state_problem(identifier, state):
                if fail_on_failed_state:
                    raise IacError(cluster_state_problem(identifier, state)) from None
                return True, state  # settled, if not well: good enough to delete
            return False, state

    return check


def _wait(
    ctx: Context, identifier: str, waiter_name: str, *, what: str, on_timeout: str, fail_on_failed_state: bool = True
) -> None:
    check = cluster_state_check(
        ctx.aws.client("redshift"), identifier, waiter_name, fail_on_failed_state=fail_on_failed_state
    )
    ctx.wait(check, what=what, delay_s=CLUSTER_POLL_SECONDS, on_timeout=on_timeout)


def create_cluster(ctx: Context, role_arn: str, spec: ClusterSpec, db: DbSpec, password: str) -> Warehouse:
    """Create the cluster, or reuse ours; return it once available."""
    redshift = ctx.aws.client("redshift")
    cluster = find_cluster(redshift, spec.identifier)
    if cluster is None:
        group_id = default_security_group(ctx.aws.client("ec2"), ctx.aws.region)
        params = {
            "ClusterIdentifier": spec.identifier,
            "ClusterType": spec.cluster_type,
            "NodeType": spec.node_type,
            "DBName": db.name,
            "MasterUsername": db.user,
            "MasterUserPassword": password,
            "Port": db.port,
            "IamRoles": [role_arn],
            "VpcSecurityGroupIds": [group_id],
            "PubliclyAccessible": True,
            "Encrypted": True,
            "Tags": our_tags(),
        }
        if spec.cluster_type == "multi-node":
            params["NumberOfNodes"] = spec.num_nodes
        redshift.create_cluster(**params)
        ctx.console.info(
            f"cluster {spec.identifier}: creating {spec.num_nodes} x "
            f"{spec.node_type} (usually 5-15 minutes); billing starts now, "
            f"{describe_cluster_cost(spec.node_type, spec.num_nodes)}"
        )
    else:
        if not is_managed(cluster.get("Tags")):
            raise not_managed_cluster_error(spec.identifier, "use")
        problem = cluster_state_problem(spec.identifier, cluster["ClusterStatus"])
        if problem:
            raise IacError(problem)
        ctx.console.info(f"cluster {spec.identifier}: exists ({cluster['ClusterStatus']}), reused")
        if (cluster.get("NodeType"), cluster.get("NumberOfNodes")) != (spec.node_type, spec.num_nodes):
            ctx.console.warn(
                f"cluster {spec.identifier} has {cluster.get('NumberOfNodes')} x "
                f"{cluster.get('NodeType')} but dwh.cfg asks for {spec.num_nodes} x "
                f"{spec.node_type}; delete and create it again to change that"
            )
    _wait(
        ctx,
        spec.identifier,
        "cluster_available",
        what=f"cluster {spec.identifier}",
        on_timeout="run `python iac_setup.py create` again to keep waiting",
    )
    cluster = find_cluster(redshift, spec.identifier)
    if cluster is None:
        raise IacError(f"cluster {spec.identifier} disappeared while we waited for it")
    attached = [r.get("IamRoleArn") for r in cluster.get("IamRoles", [])]
    if role_arn not in attached:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=spec.identifier, AddIamRoles=[role_arn])
        ctx.console.info(f"cluster {spec.identifier}: attached IAM role {role_arn}")
    ctx.console.info(
        f"cluster {spec.identifier}: available at {cluster['Endpoint']['Address']}:{cluster['Endpoint']['Port']}"
    )
    return Warehouse(
        what=f"cluster {spec.identifier}",
        host=cluster["Endpoint"]["Address"],
        port=int(cluster["Endpoint"]["Port"]),
        group_ids=cluster_group_ids(cluster),
        marker=rule_marker("cluster", spec.identifier),
        cost=describe_cluster_cost(
            cluster.get("NodeType", spec.node_type), int(cluster.get("NumberOfNodes") or spec.num_nodes)
        ),
    )


def delete_cluster(ctx: Context, cluster: dict, final_snapshot: bool) -> None:
    redshift = ctx.aws.client("redshift")
    identifier = cluster["ClusterIdentifier"]
    state = cluster["ClusterStatus"]
    if state in ("creating", "modifying", "rebooting", "resizing", "renaming"):
        ctx.console.info(f"cluster {identifier}: {state}; waiting until it can be deleted")
        _wait(
            ctx,
            identifier,
            "cluster_available",
            what=f"cluster {identifier}",
            on_timeout="run `python iac_setup.py delete` again",
            fail_on_failed_state=False,
        )
        refreshed = find_cluster(redshift, identifier)
        state = refreshed["ClusterStatus"] if refreshed else "deleting"
    if state not in ("deleting", "final-snapshot"):
        params: dict = {"ClusterIdentifier": identifier}
        if final_snapshot:
            snapshot = f"{identifier}-final-{datetime.now(UTC):%Y%m%d-%H%M%S}"
            params.update(SkipFinalClusterSnapshot=False, FinalClusterSnapshotIdentifier=snapshot)
            ctx.console.info(
                f"cluster {identifier}: deleting, keeping final snapshot {snapshot} "
                "(snapshot storage is billed until you delete it)"
            )
        else:
            params["SkipFinalClusterSnapshot"] = True
            ctx.console.info(f"cluster {identifier}: deleting (no final snapshot)")
        try:
            redshift.delete_cluster(**params)
        except ClientError as exc:
            if error_code(exc) != "ClusterNotFound":
                raise
    _wait(
        ctx,
        identifier,
        "cluster_deleted",
        what=f"deletion of cluster {identifier}",
        on_timeout="run `python iac_setup.py delete` again to keep waiting",
    )
    ctx.console.info(f"cluster {identifier}: deleted")


def show_cluster(ctx: Context) -> tuple[str | None, list[str], str]:
    """Print the cluster's status lines; return (endpoint host, security groups, rule marker)."""
    console = ctx.console
    identifier = ctx.cfg.cluster_identifier()
    marker = rule_marker("cluster", identifier)
    cluster = find_cluster(ctx.aws.client("redshift"), identifier)
    if cluster is None:
        console.info(f"  Cluster    {identifier}: not found (costs nothing)")
        return None, [], marker
    state = cluster["ClusterStatus"]
    owner = "" if is_managed(cluster.get("Tags")) else " (NOT created by iac_setup.py)"
    console.info(f"  Cluster    {identifier}: {state}{owner}")
    problem = cluster_state_problem(identifier, state)
    if problem and state != "paused":
        console.warn(problem)
    endpoint = cluster.get("Endpoint") or {}
    host = endpoint.get("Address")
    console.info(f"  Endpoint   {host}:{endpoint.get('Port')}" if host else "  Endpoint   not assigned yet")
    nodes, node_type = int(cluster.get("NumberOfNodes") or 1), cluster.get("NodeType", "?")
    console.info(f"  Nodes      {nodes} x {node_type}")
    console.info(
        "  Cost       paused: compute is not billed, storage still is"
        if state == "paused"
        else f"  Cost       {describe_cluster_cost(node_type, nodes)}"
    )
    return host, cluster_group_ids(cluster), marker


def find_cluster_teardown(ctx: Context) -> Teardown:
    """The cluster delete would remove (refusing one that is not ours)."""
    identifier = ctx.cfg.cluster_identifier()
    cluster = find_cluster(ctx.aws.client("redshift"), identifier)
    if cluster and not is_managed(cluster.get("Tags")):
        raise not_managed_cluster_error(identifier, "delete")
    items = []
    if cluster:
        items.append(
            f"Redshift cluster {identifier} ({cluster['ClusterStatus']}, "
            f"{cluster.get('NumberOfNodes')} x {cluster.get('NodeType')}) and all its "
            f"data {snapshot_note(ctx.args.final_snapshot)}"
        )

    def remove() -> None:
        if cluster:
            delete_cluster(ctx, cluster, ctx.args.final_snapshot)

    return Teardown(
        items,
        rule_marker("cluster", identifier),
        ((cluster or {}).get("Endpoint") or {}).get("Address"),
        f"no cluster {identifier}",
        remove,
    )
