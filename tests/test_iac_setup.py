"""iac_setup.py: create -> status -> delete against moto, reruns, and the failure paths."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from aws_helpers import (
    ACCOUNT,
    CLUSTER_ID,
    MY_IP,
    REGION,
    ROLE_ARN,
    ROLE_NAME,
    S3_READ_ARN,
    read_cfg,
    redshift_backend,
    session,
    set_cfg,
    set_cluster_status,
)
from botocore.stub import Stubber
from helpers import ROOT, assert_owner_only, posix_only

import iac_setup
from dwh.config import PASSWORD_ENV
from dwh.iac.cfgfile import update_cfg_text, write_cfg_values
from dwh.iac.cluster import CLUSTER_POLL_SECONDS
from dwh.iac.role import TRUST_POLICY, TRUSTED_SERVICES
from dwh.iac.session import Aws

MARKER = f"iac_setup.py cluster {CLUSTER_ID}"


# ---------------------------------------------------------------------------- helpers


def clients():
    aws = session()
    return aws.client("iam"), aws.client("redshift"), aws.client("ec2")


def port_rules(ec2, port=5439):
    """(group, cidr, description) of every ingress rule on ``port`` in the region."""
    found = []
    for group in ec2.describe_security_groups()["SecurityGroups"]:
        for perm in group["IpPermissions"]:
            if perm.get("FromPort") == port:
                found += [(group["GroupId"], r["CidrIp"], r.get("Description", "")) for r in perm.get("IpRanges", [])]
    return found


def cluster_or_none(redshift, identifier=CLUSTER_ID):
    try:
        return redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
    except redshift.exceptions.ClusterNotFoundFault:
        return None


def role_or_none(iam, name=ROLE_NAME):
    try:
        return iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return None


def create_foreign_cluster(redshift, identifier=CLUSTER_ID, tags=()):
    ec2 = session().client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    redshift.create_cluster(
        ClusterIdentifier=identifier,
        ClusterType="single-node",
        NodeType="ra3.large",
        MasterUsername="someone",
        MasterUserPassword="Other-Pw-123",
        Tags=list(tags),
        VpcSecurityGroupIds=[group],
    )


def assert_one_clean_error_line(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


class Tty(io.StringIO):
    def isatty(self):
        return True


# ---------------------------------------------------------------------------- happy path


def test_create_status_delete_cycle(moto_aws, run, cfg_path, fake_sleep):
    iam, redshift, ec2 = clients()

    code, out, err = run("create")
    assert code == 0, err

    role = iam.get_role(RoleName=ROLE_NAME)["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"]["Service"] for s in trust] == [list(TRUSTED_SERVICES)]
    attached = iam.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [S3_READ_ARN]
    assert iam.list_role_policies(RoleName=ROLE_NAME)["PolicyNames"] == []

    cluster = cluster_or_none(redshift)
    assert cluster["NodeType"] == "ra3.large" and cluster["NumberOfNodes"] == 1
    assert cluster["DBName"] == "sparkify" and cluster["MasterUsername"] == "awsuser"
    assert cluster["PubliclyAccessible"] is True
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [role["Arn"]]
    assert {"Key": "managed-by", "Value": "iac_setup.py"} in cluster["Tags"]
    assert port_rules(ec2) == [(cluster["VpcSecurityGroups"][0]["VpcSecurityGroupId"], f"{MY_IP}/32", MARKER)]

    cfg = read_cfg(cfg_path)
    assert cfg["CLUSTER"]["HOST"] == cluster["Endpoint"]["Address"]
    assert cfg["IAM_ROLE"]["ARN"] == role["Arn"]
    assert cfg["WAREHOUSE"]["TARGET"] == "local"  # not flipped without --set-target
    assert "python create_tables.py" in out and "TARGET = redshift" in out
    assert fake_sleep.calls == []  # moto's cluster is available at once: no waiting

    code, out, err = run("status")
    assert code == 0, err
    assert f"{CLUSTER_ID}: available" in out
    assert cluster["Endpoint"]["Address"] in out
    assert "1 x ra3.large" in out
    assert "$0.54/hour" in out
    assert f"{MY_IP}/32" in out and "added by iac_setup.py" in out
    assert "HOST up to date" in out

    code, out, err = run("delete", "--yes")
    assert code == 0, err
    assert cluster_or_none(redshift) is None
    assert role_or_none(iam) is None
    assert port_rules(ec2) == []
    cfg = read_cfg(cfg_path)
    assert cfg["CLUSTER"]["HOST"] == "" and cfg["IAM_ROLE"]["ARN"] == ""

    code, out, err = run("status")
    assert code == 0, err
    assert f"{CLUSTER_ID}: not found" in out and f"{ROLE_NAME}: not found" in out


def test_create_rerun_reuses_everything(moto_aws, run, cfg_path):
    iam, redshift, ec2 = clients()
    assert run("create")[0] == 0
    first_text = cfg_path.read_text()
    first_cluster = cluster_or_none(redshift)

    code, out, err = run("create")
    assert code == 0, err
    assert "exists, reused" in out and "already open" in out
    assert cfg_path.read_text() == first_text
    assert cluster_or_none(redshift)["ClusterCreateTime"] == first_cluster["ClusterCreateTime"]
    assert len(port_rules(ec2)) == 1
    assert len(iam.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]) == 1


def test_create_rerun_finishes_an_interrupted_run(moto_aws, run, cfg_path):
    iam, redshift, ec2 = clients()
    # An earlier run got as far as the role (no policy yet) and the cluster, nothing more.
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    create_foreign_cluster(redshift, tags=[{"Key": "managed-by", "Value": "iac_setup.py"}])
    # moto 5.2.5 lacks ModifyClusterIamRoles: answer it here and apply it to moto's cluster.
    modified = []

    def record(params, **_):
        modified.append(dict(params))
        redshift_backend().clusters[params["ClusterIdentifier"]].iam_roles_arn += params["AddIamRoles"]

    def answer(**_):
        from botocore.awsrequest import AWSResponse

        return AWSResponse("https://example.invalid", 200, {}, None), {"Cluster": {}}

    hooked = session()
    hooked.events.register("before-parameter-build.redshift.ModifyClusterIamRoles", record)
    hooked.events.register("before-call.redshift.ModifyClusterIamRoles", answer)

    code, out, err = run("create", aws=Aws(hooked))
    assert code == 0, err
    assert modified == [{"ClusterIdentifier": CLUSTER_ID, "AddIamRoles": [ROLE_ARN]}]
    assert "attached AmazonS3ReadOnlyAccess" in out
    attached = iam.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [S3_READ_ARN]
    cluster = cluster_or_none(redshift)
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [ROLE_ARN]  # attached on rerun
    assert [cidr for _, cidr, _ in port_rules(ec2)] == [f"{MY_IP}/32"]
    assert read_cfg(cfg_path)["CLUSTER"]["HOST"] == cluster["Endpoint"]["Address"]


def test_create_rerun_from_a_new_address_replaces_only_our_rule(moto_aws, run):
    _, redshift, ec2 = clients()
    assert run("create")[0] == 0
    group = cluster_or_none(redshift)["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5439,
                "ToPort": 5439,
                "IpRanges": [{"CidrIp": "198.51.100.0/24", "Description": "office"}],
            }
        ],
    )

    code, out, err = run("create", public_ip=lambda: "192.0.2.55")
    assert code == 0, err
    assert sorted(port_rules(ec2)) == sorted([(group, "198.51.100.0/24", "office"), (group, "192.0.2.55/32", MARKER)])
    assert f"removed the earlier rule tcp 5439 from {MY_IP}/32" in out


def test_set_target_flips_warehouse_target(moto_aws, run, cfg_path):
    code, out, err = run("create", "--set-target")
    assert code == 0, err
    assert read_cfg(cfg_path)["WAREHOUSE"]["TARGET"] == "redshift"
    assert "set [WAREHOUSE] TARGET" not in out


def test_write_back_keeps_every_other_line(moto_aws, run, cfg_path):
    before = cfg_path.read_text().splitlines()
    assert run("create")[0] == 0
    after = cfg_path.read_text().splitlines()
    assert len(after) == len(before)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert [b for b, _ in changed] == ["HOST =", "ARN ="]
    assert changed[0][1].startswith(f"HOST = {CLUSTER_ID}.")
    assert changed[1][1] == f"ARN = {ROLE_ARN}"
    # [LOCAL] HOST has the same key name and must not be touched
    assert read_cfg(cfg_path)["LOCAL"]["HOST"] == "127.0.0.1"


def test_multi_node_cluster_and_its_cost(moto_aws, run, cfg_path):
    set_cfg(cfg_path, "DWH", "CLUSTER_TYPE", "multi-node")
    set_cfg(cfg_path, "DWH", "NUM_NODES", "2")
    set_cfg(cfg_path, "DWH", "NODE_TYPE", "ra3.xlplus")
    code, out, err = run("create")
    assert code == 0, err
    cluster = cluster_or_none(clients()[1])
    assert cluster["NumberOfNodes"] == 2  # moto does not echo ClusterType
    code, out, _ = run("status")
    assert "2 x ra3.xlplus" in out and "$2.17/hour" in out


@pytest.mark.parametrize(
    "key, value, refusal",
    [
        (
            "NODE_TYPE",
            "dc2.large",
            "[DWH] NODE_TYPE dc2.large is not offered in us-west-2; it offers ra3.large, ra3.xlplus",
        ),
        (
            "NODE_TYPE",
            "ra3.xlplus",
            "[DWH] CLUSTER_TYPE single-node is not offered for ra3.xlplus in us-west-2; it offers multi-node",
        ),
    ],
)
def test_create_asks_aws_what_the_region_offers_and_refuses_the_rest(moto_aws, run, cfg_path, key, value, refusal):
    set_cfg(cfg_path, "DWH", key, value)
    code, _, err = run("create")
    assert code == 1
    assert_one_clean_error_line(err, refusal)
    iam, redshift = clients()[:2]
    assert cluster_or_none(redshift) is None
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"] == ROLE_NAME]  # refused before anything was made


def test_explicit_allowed_cidr_is_used_without_looking_up_the_ip(moto_aws, run, cfg_path):
    set_cfg(cfg_path, "DWH", "ALLOWED_CIDR", "198.51.100.0/24")

    def no_lookup():
        raise AssertionError("must not look up the public IP when ALLOWED_CIDR is set")

    code, _, err = run("create", public_ip=no_lookup)
    assert code == 0, err
    assert [cidr for _, cidr, _ in port_rules(clients()[2])] == ["198.51.100.0/24"]


# ---------------------------------------------------------------------------- delete


def test_delete_rerun_with_nothing_left_is_a_clear_no_op(moto_aws, run):
    assert run("create")[0] == 0
    assert run("delete", "--yes")[0] == 0
    code, out, err = run("delete")  # no --yes needed: nothing to confirm
    assert code == 0, err
    assert "Nothing to delete" in out and err == ""


def test_delete_removes_a_leftover_rule_even_without_a_cluster(moto_aws, run):
    _, redshift, ec2 = clients()
    assert run("create")[0] == 0
    redshift.delete_cluster(ClusterIdentifier=CLUSTER_ID, SkipFinalClusterSnapshot=True)
    code, _, err = run("delete", "--yes")
    assert code == 0, err
    assert port_rules(ec2) == [] and role_or_none(clients()[0]) is None


def test_delete_refuses_without_yes_when_stdin_is_not_a_tty(moto_aws, run, monkeypatch):
    assert run("create")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))
    code, _, err = run("delete")
    assert code == 2
    assert_one_clean_error_line(err, "--yes", "not a terminal")
    assert cluster_or_none(clients()[1]) is not None
    assert len(port_rules(clients()[2])) == 1


@pytest.mark.parametrize("answer, deleted", [("no\n", False), ("\n", False), ("yes\n", True)])
def test_delete_asks_on_a_tty(moto_aws, run, monkeypatch, answer, deleted):
    assert run("create")[0] == 0
    monkeypatch.setattr(sys, "stdin", Tty(answer))
    code, out, _ = run("delete")
    assert "Type 'yes'" in out and f"Redshift cluster {CLUSTER_ID}" in out
    assert code == (0 if deleted else 1)
    assert (cluster_or_none(clients()[1]) is None) is deleted
    assert (role_or_none(clients()[0]) is None) is deleted


def test_delete_final_snapshot_and_keep_role(moto_aws, run):
    iam, redshift, _ = clients()
    assert run("create")[0] == 0
    code, out, err = run("delete", "--yes", "--final-snapshot", "--keep-role")
    assert code == 0, err
    snapshots = redshift.describe_cluster_snapshots()["Snapshots"]
    assert [s["SnapshotIdentifier"].startswith(f"{CLUSTER_ID}-final-") for s in snapshots] == [True]
    assert role_or_none(iam) is not None
    assert "billed" in out


def test_delete_of_a_failed_cluster_works(moto_aws, run):
    assert run("create")[0] == 0
    set_cluster_status(CLUSTER_ID, "hardware-failure")
    code, _, err = run("delete", "--yes")
    assert code == 0, err
    assert cluster_or_none(clients()[1]) is None


# ---------------------------------------------------------------------------- cluster states


def test_rerun_on_a_failed_cluster_reports_it(moto_aws, run, fake_sleep):
    assert run("create")[0] == 0
    set_cluster_status(CLUSTER_ID, "storage-full")
    code, _, err = run("create")
    assert code == 1
    assert_one_clean_error_line(err, "failed state 'storage-full'", "delete")
    assert fake_sleep.calls == []
    code, out, err = run("status")
    assert code == 0 and f"{CLUSTER_ID}: storage-full" in out and "failed state" in err


def _after_create_cluster_set_status(status):
    def hook(**_):
        set_cluster_status(CLUSTER_ID, status)

    hooked = session()
    hooked.events.register("after-call.redshift.CreateCluster", hook)
    return Aws(hooked)


def test_cluster_that_fails_while_creating_is_reported_not_waited_on(moto_aws, run, fake_sleep):
    aws = _after_create_cluster_set_status("incompatible-network")
    code, _, err = run("create", aws=aws)
    assert code == 1
    assert_one_clean_error_line(err, "failed state 'incompatible-network'")
    assert fake_sleep.calls == []


def test_cluster_wait_shows_progress_and_times_out(moto_aws, run, fake_sleep, cfg_path):
    aws = _after_create_cluster_set_status("creating")
    code, out, err = run("create", "--timeout", "2", aws=aws)
    assert code == 1
    assert_one_clean_error_line(err, "timed out after 2 min", "still creating", "create")
    # 2 minutes at 30 s: checks at 0, 30, 60, 90, 120 s and a sleep between each
    assert fake_sleep.calls == [CLUSTER_POLL_SECONDS] * 4
    assert out.count(f"cluster {CLUSTER_ID}: creating (") == 5
    assert read_cfg(cfg_path)["CLUSTER"]["HOST"] == ""  # nothing written for an unready cluster


def test_cluster_wait_succeeds_after_progress(moto_aws, run, fake_sleep, cfg_path):
    aws = _after_create_cluster_set_status("creating")
    fake_sleep_calls = fake_sleep.calls

    def becomes_available(seconds):
        fake_sleep_calls.append(seconds)
        if len(fake_sleep_calls) == 2:
            set_cluster_status(CLUSTER_ID, "available")

    code = iac_setup.main(["create", "--config", str(cfg_path)], aws=aws, sleep=becomes_available)
    assert code == 0
    assert fake_sleep_calls == [30, 30]
    assert read_cfg(cfg_path)["CLUSTER"]["HOST"].startswith(CLUSTER_ID)


# ---------------------------------------------------------------------------- names taken


def test_role_with_a_foreign_trust_policy_is_refused(moto_aws, run):
    iam, redshift, _ = clients()
    iam.create_role(
        RoleName=ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    code, _, err = run("create")
    assert code == 1
    assert_one_clean_error_line(
        err, ROLE_NAME, "ec2.amazonaws.com", "does not trust redshift.amazonaws.com", "IAM_ROLE_NAME"
    )
    assert cluster_or_none(redshift) is None
    assert iam.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"] == []

    code, _, err = run("delete", "--yes")
    assert code == 1 and "Refusing to delete" in err
    assert role_or_none(iam) is not None


def test_delete_still_removes_the_cluster_when_the_role_turned_foreign(moto_aws, run, cfg_path):
    iam, redshift, ec2 = clients()
    assert run("create")[0] == 0
    iam.update_assume_role_policy(
        RoleName=ROLE_NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    code, _, err = run("delete", "--yes")
    assert code == 1
    assert_one_clean_error_line(err, "Refusing to delete", ROLE_NAME)
    assert cluster_or_none(redshift) is None and port_rules(ec2) == []
    assert role_or_none(iam) is not None
    cfg = read_cfg(cfg_path)
    assert cfg["CLUSTER"]["HOST"] == "" and cfg["IAM_ROLE"]["ARN"] == ROLE_ARN


def test_role_with_other_policies_is_refused(moto_aws, run):
    iam, redshift, _ = clients()
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    iam.put_role_policy(
        RoleName=ROLE_NAME,
        PolicyName="write-everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    code, _, err = run("create")
    assert code == 1
    assert_one_clean_error_line(err, "inline policies (write-everything)")
    assert cluster_or_none(redshift) is None


def test_cluster_not_created_by_us_is_neither_reused_nor_deleted(moto_aws, run):
    _, redshift, ec2 = clients()
    create_foreign_cluster(redshift)
    code, _, err = run("create")
    assert code == 1
    assert_one_clean_error_line(err, f"cluster named {CLUSTER_ID}", "not created by iac_setup.py")
    assert port_rules(ec2) == []

    code, _, err = run("delete", "--yes")
    assert code == 1 and "refusing to delete" in err
    assert cluster_or_none(redshift) is not None
    code, out, _ = run("status")
    assert "NOT created by iac_setup.py" in out


# ---------------------------------------------------------------------------- AWS errors


def _aws_with_hook(event, code, message, op):
    def hook(**_):
        from botocore.awsrequest import AWSResponse

        return (
            AWSResponse("https://example.invalid", 403, {}, None),
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}},
        )

    hooked = session()
    hooked.events.register(f"before-call.{event}", hook)
    return Aws(hooked)


def test_access_denied_names_the_missing_permission_from_the_operation(moto_aws, run):
    aws = _aws_with_hook("iam.CreateRole", "AccessDenied", "Access denied", "CreateRole")
    code, _, err = run("create", aws=aws)
    assert code == 1
    assert_one_clean_error_line(err, "access denied", "iam:CreateRole", "docs/iac.md")


def test_access_denied_names_the_permission_from_the_message(moto_aws, run):
    hooked = session()
    aws = Aws(hooked)
    redshift = aws.client("redshift")
    stub = Stubber(redshift)
    offered = {"NodeType": "ra3.large", "ClusterType": "single-node", "ClusterVersion": "1.0", "AvailabilityZones": []}
    stub.add_response(
        "describe_orderable_cluster_options", {"OrderableClusterOptions": [offered]}, {"NodeType": "ra3.large"}
    )
    stub.add_client_error("describe_clusters", "ClusterNotFound", "not found", 404)
    stub.add_client_error(
        "create_cluster",
        "UnauthorizedOperation",
        http_status_code=403,
        service_message=f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: "
        f"iam:PassRole on resource: {ROLE_ARN} because no identity-based "
        "policy allows it. Encoded authorization failure message: AAAA-long",
    )
    with stub:
        code, _, err = run("create", aws=aws)
    assert code == 1
    # the permission AWS names (iam:PassRole), not the one the operation suggests
    assert_one_clean_error_line(err, "may not call iam:PassRole (CreateCluster)", "user/dev")
    assert "Encoded authorization" not in err


@pytest.mark.parametrize("code_name", ["ClusterQuotaExceeded", "NumberOfNodesQuotaExceeded"])
def test_quota_exceeded_is_one_clear_line(moto_aws, run, code_name):
    aws = _aws_with_hook(
        "redshift.CreateCluster", code_name, "The request would exceed the allowed number of clusters", "CreateCluster"
    )
    code, _, err = run("create", aws=aws)
    assert code == 1
    assert_one_clean_error_line(err, "quota exceeded in CreateCluster", code_name, "Service Quotas")


def test_no_credentials_is_one_clear_line(aws_env, run, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = run("status")
    assert code == 1
    assert_one_clean_error_line(err, "no usable AWS credentials", "aws sso login")


def test_unknown_profile_is_a_config_error(aws_env, run):
    code, _, err = run("status", "--profile", "nope")
    assert code == 2
    assert_one_clean_error_line(err, "'nope'", "--profile")


def test_profile_from_config_is_used(aws_env, moto_aws, run, cfg_path, tmp_path, monkeypatch):
    (tmp_path / "aws-config").write_text("[profile course]\nregion = eu-west-1\n")
    (tmp_path / "aws-credentials").write_text(
        "[course]\naws_access_key_id = profile-key\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    set_cfg(cfg_path, "AWS", "PROFILE", "course")
    code, out, err = run("status")
    assert code == 0, err
    assert f"region {REGION}" in out  # [AWS] REGION wins over the profile's region
    assert "WARNING" not in err


# ---------------------------------------------------------------------------- bad config

BAD_CONFIG = [
    ("DWH", "NUM_NODES", "x", "dwh.cfg: [DWH] NUM_NODES must be a positive integer, got 'x'"),
    ("DWH", "NUM_NODES", "0", "dwh.cfg: [DWH] NUM_NODES must be a positive integer, got '0'"),
    ("DWH", "NUM_NODES", "2", "dwh.cfg: [DWH] NUM_NODES must be 1 for a single-node cluster"),
    ("DWH", "CLUSTER_TYPE", "big", "dwh.cfg: [DWH] CLUSTER_TYPE must be single-node or multi-node, got 'big'"),
    ("DWH", "CLUSTER_IDENTIFIER", "1-bad--name", "dwh.cfg: [DWH] CLUSTER_IDENTIFIER must be"),
    ("DWH", "NODE_TYPE", "", "dwh.cfg: [DWH] NODE_TYPE is empty"),
    ("DWH", "IAM_ROLE_NAME", "has space", "dwh.cfg: [DWH] IAM_ROLE_NAME must be"),
    ("DWH", "ALLOWED_CIDR", "abc", "dwh.cfg: [DWH] ALLOWED_CIDR must be an IPv4 CIDR"),
    ("DWH", "ALLOWED_CIDR", "10.0.0.1/24", "dwh.cfg: [DWH] ALLOWED_CIDR has host bits set"),
    ("DWH", "ALLOWED_CIDR", "2001:db8::/32", "dwh.cfg: [DWH] ALLOWED_CIDR must be an IPv4 CIDR"),
    ("DWH", "ALLOWED_CIDR", "0.0.0.0/0", "--open-to-world"),
    ("AWS", "REGION", "", "dwh.cfg: [AWS] REGION is empty"),
    ("AWS", "REGION", "mars", "dwh.cfg: [AWS] REGION must be an AWS region"),
    ("AWS", "KEY", "AKIAONLYKEYNOSECRET", "dwh.cfg: [AWS] SECRET is empty but its partner"),
    ("CLUSTER", "DB_PORT", "abc", "dwh.cfg: [CLUSTER] DB_PORT must be a positive integer"),
    ("CLUSTER", "DB_PORT", "6000", "dwh.cfg: [CLUSTER] DB_PORT must be within 5431-5455 or 8191-8215 for RA3 clusters"),
    ("CLUSTER", "DB_NAME", "Sparkify DB", "dwh.cfg: [CLUSTER] DB_NAME must be"),
    ("CLUSTER", "DB_USER", "", "dwh.cfg: [CLUSTER] DB_USER is empty"),
]


@pytest.mark.parametrize(
    "section, key, value, message", BAD_CONFIG, ids=[f"{s}.{k}={v!r}" for s, k, v, _ in BAD_CONFIG]
)
def test_bad_config_is_one_line_and_exit_2_before_touching_aws(moto_aws, run, cfg_path, section, key, value, message):
    set_cfg(cfg_path, section, key, value)
    code, _, err = run("create")
    assert code == 2
    assert_one_clean_error_line(err, message)
    iam, redshift, _ = clients()
    assert role_or_none(iam) is None and cluster_or_none(redshift) is None


@pytest.mark.parametrize(
    "value, needs",
    [
        ("short1A", "8-64 characters"),
        ("alllowercase123", "an upper-case letter"),
        ("Has@AtSign123", "without ' \" \\ / @"),
    ],
)
def test_weak_password_is_refused_without_echoing_it(moto_aws, run, cfg_path, monkeypatch, value, needs):
    monkeypatch.setenv(PASSWORD_ENV, value)
    code, out, err = run("create")
    assert code == 2
    assert_one_clean_error_line(err, "SPARKIFY_DB_PASSWORD", needs)
    assert value not in out + err


def test_missing_password_is_a_config_error(moto_aws, run, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    code, _, err = run("create")
    assert code == 2
    assert_one_clean_error_line(err, "[CLUSTER] DB_PASSWORD is empty", "SPARKIFY_DB_PASSWORD")


def test_missing_section_and_missing_file(moto_aws, run, cfg_path, tmp_path):
    text = cfg_path.read_text()
    cfg_path.write_text(text[: text.index("[DWH]")])
    code, _, err = run("status")
    assert code == 2
    assert_one_clean_error_line(err, "dwh.cfg: section [DWH] is missing")

    code, _, err = run("status", config=tmp_path / "nowhere.cfg")
    assert code == 2
    assert_one_clean_error_line(err, "file not found", "dwh.cfg.example")


def test_status_and_delete_do_not_need_create_only_keys(moto_aws, run, cfg_path, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    set_cfg(cfg_path, "DWH", "ALLOWED_CIDR", "garbage")
    set_cfg(cfg_path, "DWH", "NUM_NODES", "x")
    assert run("status")[0] == 0
    assert run("delete", "--yes")[0] == 0


def test_unknown_public_ip_asks_for_allowed_cidr(moto_aws, run):
    code, _, err = run("create", public_ip=lambda: None)
    assert code == 2
    assert_one_clean_error_line(err, "[DWH] ALLOWED_CIDR", "could not be determined")
    assert role_or_none(clients()[0]) is None


def test_config_is_read_like_dwh_config_reads_it(moto_aws, run, cfg_path, monkeypatch):
    # inline comments, quotes and '%' mean what they mean to create_tables.py / etl.py (one
    # shared reader, no interpolation: '%' and '%%' are taken as written), so the cluster gets
    # the very password those scripts will connect with
    monkeypatch.delenv(PASSWORD_ENV)
    set_cfg(cfg_path, "CLUSTER", "DB_PASSWORD", '"Pct%%Passw0rd"   ; quoted, with a comment')
    set_cfg(cfg_path, "DWH", "NUM_NODES", "1  # one node")
    code, _, err = run("create")
    assert code == 0, err
    assert redshift_backend().clusters[CLUSTER_ID].master_user_password == "Pct%%Passw0rd"
    from dwh.config import load_settings

    set_cfg(cfg_path, "WAREHOUSE", "TARGET", "redshift")
    settings = load_settings(cfg_path)
    assert settings.redshift.password == "Pct%%Passw0rd"
    assert settings.redshift.host == cluster_or_none(clients()[1])["Endpoint"]["Address"]
    assert settings.sources.iam_role == ROLE_ARN


def test_a_lone_percent_is_taken_verbatim_and_never_shown(moto_aws, run, cfg_path, monkeypatch):
    # It used to be a config error (configparser's '%' interpolation); now it is just a character.
    monkeypatch.delenv(PASSWORD_ENV)
    set_cfg(cfg_path, "CLUSTER", "DB_PASSWORD", "Lone%Passw0rd")
    code, out, err = run("create")
    assert code == 0, err
    assert redshift_backend().clusters[CLUSTER_ID].master_user_password == "Lone%Passw0rd"
    assert "Lone" not in out + err


# ---------------------------------------------------------------------------- 0.0.0.0/0


def test_open_to_world_only_with_the_flag_and_with_a_warning(moto_aws, run, cfg_path):
    _, _, ec2 = clients()
    code, out, err = run("create", "--open-to-world")
    assert code == 0
    assert "WARNING: --open-to-world" in err and "ANY address" in err
    assert [cidr for _, cidr, _ in port_rules(ec2)] == ["0.0.0.0/0"]
    code, out, err = run("status")
    assert "0.0.0.0/0" in out and "whole internet" in err
    assert run("delete", "--yes")[0] == 0
    assert port_rules(ec2) == []


# ---------------------------------------------------------------------------- secrets


def test_secrets_never_appear_in_output(moto_aws, run, cfg_path, monkeypatch):
    key, secret, password = "AKIAFAKEKEY0123456789", "fake/Secret+Value0123456789", "Cfg-Passw0rd!x"
    monkeypatch.delenv(PASSWORD_ENV)
    set_cfg(cfg_path, "AWS", "KEY", key)
    set_cfg(cfg_path, "AWS", "SECRET", secret)
    set_cfg(cfg_path, "CLUSTER", "DB_PASSWORD", password)
    seen = ""
    for argv in (["create"], ["create"], ["status"], ["delete", "--yes"]):
        code, out, err = run(*argv)
        assert code == 0, err
        seen += out + err
    assert "KEY/SECRET" in seen  # the warning is there...
    for value in (key, secret, password):
        assert value not in seen  # ...the values are not

    # An AWS error message that happens to echo the password is redacted too.
    aws = _aws_with_hook(
        "redshift.CreateCluster",
        "InvalidParameterValue",
        f"MasterUserPassword {password} is not valid",
        "CreateCluster",
    )
    code, out, err = run("create", aws=aws)
    assert code == 1
    assert password not in out + err and "********" in err


# ---------------------------------------------------------------------------- write-back unit


def test_update_cfg_text_replaces_adds_and_keeps_the_rest():
    text = (
        "; top comment\r\n[CLUSTER]\r\n; host comment\r\nhost = old\r\n  continued\r\n"
        "DB_NAME = x\r\n\r\n[LOCAL]\r\nHOST = 127.0.0.1\r\n"
    )
    result = update_cfg_text(
        text,
        {
            ("CLUSTER", "HOST"): "new.example",
            ("CLUSTER", "DB_PORT"): "5439",
            ("IAM_ROLE", "ARN"): "arn:aws:iam::1:role/r",
        },
    )
    assert result == (
        "; top comment\r\n[CLUSTER]\r\n; host comment\r\nhost = new.example\r\n"
        "DB_NAME = x\r\nDB_PORT = 5439\r\n\r\n[LOCAL]\r\nHOST = 127.0.0.1\r\n"
        "\r\n[IAM_ROLE]\r\nARN = arn:aws:iam::1:role/r\r\n"
    )
    assert update_cfg_text(result, {("CLUSTER", "HOST"): "new.example"}) == result


def test_update_cfg_text_keeps_inline_comments():
    text = "[CLUSTER]\nHOST =   ; filled in by iac_setup.py\n"
    assert (
        update_cfg_text(text, {("CLUSTER", "HOST"): "h.example"})
        == "[CLUSTER]\nHOST = h.example ; filled in by iac_setup.py\n"
    )


@posix_only("POSIX file modes")
def test_write_cfg_values_leaves_the_file_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "dwh.cfg"
    path.write_text("[CLUSTER]\nHOST =\n")
    path.chmod(0o644)  # made with cp
    assert write_cfg_values(path, {("CLUSTER", "HOST"): "h"}) is True
    assert path.read_text() == "[CLUSTER]\nHOST = h\n"
    assert_owner_only(path)
    assert write_cfg_values(path, {("CLUSTER", "HOST"): "h"}) is False


# ---------------------------------------------------------------------------- CLI


def test_help_runs_as_a_script():
    result = subprocess.run(
        [sys.executable, str(ROOT / "iac_setup.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for word in ("create", "status", "delete", "Exit codes"):
        assert word in result.stdout
