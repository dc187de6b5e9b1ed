"""iac_setup.py --serverless: moto does not implement redshift-serverless, so that client is a
botocore Stubber (every expected call listed in order); IAM and EC2 are moto."""

from __future__ import annotations

import pytest
from aws_helpers import ACCOUNT, MY_IP, PASSWORD, REGION, ROLE_ARN, read_cfg, session, set_cfg
from botocore.stub import Stubber

from dwh.iac.serverless import SERVERLESS_POLL_SECONDS
from dwh.iac.session import Aws
from dwh.iac.settings import IacConfig

NS, WG = "sparkify", "sparkify"
NS_ARN = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:namespace/0000-ns"
WG_ARN = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/0000-wg"
HOST = f"{WG}.{ACCOUNT}.{REGION}.redshift-serverless.amazonaws.com"
TAGS = [{"key": "managed-by", "value": "iac_setup.py"}, {"key": "project", "value": "sparkify"}]
MARKER = f"iac_setup.py workgroup {WG}"


def namespace(status="AVAILABLE", roles=(ROLE_ARN,)):
    return {
        "namespace": {
            "namespaceArn": NS_ARN,
            "namespaceName": NS,
            "namespaceId": "0000-ns",
            "status": status,
            "dbName": "sparkify",
            "adminUsername": "awsuser",
            "iamRoles": [f"IamRole(applyStatus=in-sync, iamRoleArn={r})" for r in roles],
            "defaultIamRoleArn": roles[0] if roles else "",
        }
    }


def workgroup(group_id, status="AVAILABLE", public=True):
    return {
        "workgroup": {
            "workgroupArn": WG_ARN,
            "workgroupName": WG,
            "workgroupId": "0000-wg",
            "namespaceName": NS,
            "status": status,
            "baseCapacity": 8,
            "publiclyAccessible": public,
            "port": 5439,
            "securityGroupIds": [group_id],
            "endpoint": {"address": HOST, "port": 5439},
        }
    }


def not_found(stub, method, name):
    stub.add_client_error(method, "ResourceNotFoundException", f"{name} not found", 404)


@pytest.fixture
def stubbed(moto_aws):
    """(Aws whose redshift-serverless client is stubbed, the stub, the default SG id)."""
    aws = Aws(session())
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    group_id = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    stub = Stubber(aws.client("redshift-serverless"))
    stub.activate()
    yield aws, stub, group_id
    stub.deactivate()


def our_rules(aws):
    groups = aws.client("ec2").describe_security_groups()["SecurityGroups"]
    return [
        (g["GroupId"], r["CidrIp"])
        for g in groups
        for p in g["IpPermissions"]
        for r in p.get("IpRanges", [])
        if r.get("Description") == MARKER
    ]


def stub_fresh_create(stub, group_id):
    not_found(stub, "get_namespace", NS)
    stub.add_response(
        "create_namespace",
        namespace(),
        {
            "namespaceName": NS,
            "adminUsername": "awsuser",
            "adminUserPassword": PASSWORD,
            "dbName": "sparkify",
            "defaultIamRoleArn": ROLE_ARN,
            "iamRoles": [ROLE_ARN],
            "tags": TAGS,
        },
    )
    stub.add_response("get_namespace", namespace(), {"namespaceName": NS})
    not_found(stub, "get_workgroup", WG)
    stub.add_response(
        "create_workgroup",
        workgroup(group_id, "CREATING"),
        {
            "workgroupName": WG,
            "namespaceName": NS,
            "baseCapacity": 8,
            "publiclyAccessible": True,
            "port": 5439,
            "securityGroupIds": [group_id],
            "tags": TAGS,
        },
    )
    stub.add_response("get_workgroup", workgroup(group_id, "CREATING"), {"workgroupName": WG})
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})


def stub_existing(stub, group_id, ns_roles=(ROLE_ARN,)):
    stub.add_response("get_namespace", namespace(roles=ns_roles), {"namespaceName": NS})
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": NS_ARN})
    stub.add_response("get_namespace", namespace(roles=ns_roles), {"namespaceName": NS})


def stub_existing_workgroup(stub, group_id):
    """An existing, tagged, available workgroup: looked up, ownership checked, waited on."""
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": WG_ARN})
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})


def test_serverless_create_status_delete_cycle(stubbed, run, cfg_path, fake_sleep):
    aws, stub, group_id = stubbed

    stub_fresh_create(stub, group_id)
    code, out, err = run("create", "--serverless", aws=aws)
    assert code == 0, err
    stub.assert_no_pending_responses()
    assert fake_sleep.calls == [SERVERLESS_POLL_SECONDS]  # polled once while CREATING
    assert f"workgroup {WG}: CREATING (" in out
    assert our_rules(aws) == [(group_id, f"{MY_IP}/32")]
    cfg = read_cfg(cfg_path)
    assert cfg["CLUSTER"]["HOST"] == HOST and cfg["IAM_ROLE"]["ARN"] == ROLE_ARN
    assert "$3.00 per hour of query time" in out and "nothing while idle" in out
    assert "delete --serverless" in out

    # status
    stub.add_response("get_namespace", namespace(), {"namespaceName": NS})
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})
    code, out, err = run("status", "--serverless", aws=aws)
    assert code == 0, err
    stub.assert_no_pending_responses()
    assert f"Namespace  {NS}: AVAILABLE" in out and f"Workgroup  {WG}: AVAILABLE" in out
    assert f"{HOST}:5439" in out and "base capacity 8 RPU" in out
    assert f"{MY_IP}/32" in out and "HOST up to date" in out

    # delete
    stub.add_response("get_workgroup", workgroup(group_id), {"workgroupName": WG})
    stub.add_response("get_namespace", namespace(), {"namespaceName": NS})
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": WG_ARN})
    stub.add_response("list_tags_for_resource", {"tags": TAGS}, {"resourceArn": NS_ARN})
    stub.add_response("delete_workgroup", workgroup(group_id, "DELETING"), {"workgroupName": WG})
    stub.add_response("get_workgroup", workgroup(group_id, "DELETING"), {"workgroupName": WG})
    not_found(stub, "get_workgroup", WG)
    stub.add_response("delete_namespace", namespace("DELETING"), {"namespaceName": NS})
    not_found(stub, "get_namespace", NS)
    fake_sleep.calls.clear()
    code, out, err = run("delete", "--serverless", "--yes", aws=aws)
    assert code == 0, err
    stub.assert_no_pending_responses()
    assert fake_sleep.calls == [SERVERLESS_POLL_SECONDS]
    assert our_rules(aws) == []
    assert aws.client("iam").list_roles()["Roles"] == []
    cfg = read_cfg(cfg_path)
    assert cfg["CLUSTER"]["HOST"] == "" and cfg["IAM_ROLE"]["ARN"] == ""

    # delete again: nothing left
    not_found(stub, "get_workgroup", WG)
    not_found(stub, "get_namespace", NS)
    code, out, err = run("delete", "--serverless", aws=aws)
    assert code == 0, err
    stub.assert_no_pending_responses()
    assert "Nothing to delete" in out


def test_serverless_create_rerun_reuses_everything(stubbed, run, cfg_path, fake_sleep):
    aws, stub, group_id = stubbed
    stub_fresh_create(stub, group_id)
    assert run("create", "--serverless", aws=aws)[0] == 0
    text = cfg_path.read_text()

    stub_existing(stub, group_id)
    stub_existing_workgroup(stub, group_id)
    code, out, err = run("create", "--serverless", aws=aws)
    assert code == 0, err
    stub.assert_no_pending_responses()
    assert f"namespace {NS}: exists (AVAILABLE), reused" in out
    assert "already open" in out
    assert cfg_path.read_text() == text
    assert len(our_rules(aws)) == 1


def test_serverless_namespace_without_our_role_gets_it(stubbed, run):
    aws, stub, group_id = stubbed
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    stub_existing(stub, group_id, ns_roles=(other,))
    stub.add_response(
        "update_namespace",
        namespace(roles=(other, ROLE_ARN)),
        {"namespaceName": NS, "defaultIamRoleArn": ROLE_ARN, "iamRoles": sorted([other, ROLE_ARN])},
    )
    stub.add_response("get_namespace", namespace(roles=(other, ROLE_ARN)), {"namespaceName": NS})
    stub_existing_workgroup(stub, group_id)
    code, out, err = run("create", "--serverless", aws=aws)
    assert code == 0, err
    stub.assert_no_pending_responses()
    assert f"attached IAM role {ROLE_ARN}" in out


def test_serverless_workgroup_wait_times_out(stubbed, run, cfg_path, fake_sleep):
    aws, stub, group_id = stubbed
    not_found(stub, "get_namespace", NS)
    stub.add_response("create_namespace", namespace())
    stub.add_response("get_namespace", namespace())
    not_found(stub, "get_workgroup", WG)
    stub.add_response("create_workgroup", workgroup(group_id, "CREATING"))
    for _ in range(3):  # 0.5 min at 15 s: checks at 0, 15 and 30 s
        stub.add_response("get_workgroup", workgroup(group_id, "CREATING"))
    code, _, err = run("create", "--serverless", "--timeout", "0.5", aws=aws)
    assert code == 1
    assert "timed out after 0.5 min waiting for workgroup sparkify (still CREATING)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    stub.assert_no_pending_responses()
    assert fake_sleep.calls == [15, 15]
    assert read_cfg(cfg_path)["CLUSTER"]["HOST"] == ""


def test_serverless_namespace_not_ours_is_refused(stubbed, run):
    aws, stub, group_id = stubbed
    stub.add_response("get_namespace", namespace())
    stub.add_response("list_tags_for_resource", {"tags": []})
    code, _, err = run("create", "--serverless", aws=aws)
    assert code == 1
    assert "namespace named sparkify already exists but was not created by iac_setup.py" in err
    stub.assert_no_pending_responses()  # and nothing was created after that

    stub.add_response("get_workgroup", workgroup(group_id))
    stub.add_response("get_namespace", namespace())
    stub.add_response("list_tags_for_resource", {"tags": []})
    code, _, err = run("delete", "--serverless", "--yes", aws=aws)
    assert code == 1 and "refusing to delete" in err
    stub.assert_no_pending_responses()  # no delete_workgroup / delete_namespace


def test_serverless_access_denied_names_the_action(stubbed, run):
    aws, stub, _ = stubbed
    stub.add_client_error("get_namespace", "AccessDeniedException", "Access denied", 403)
    code, _, err = run("status", "--serverless", aws=aws)
    assert code == 1
    assert "redshift-serverless:GetNamespace" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("SERVERLESS_BASE_RPU", "x", "[DWH] SERVERLESS_BASE_RPU must be an integer >= 4, got 'x'"),
        ("SERVERLESS_BASE_RPU", "2048", "[DWH] SERVERLESS_BASE_RPU must be at most 1024"),
        ("SERVERLESS_WORKGROUP", "No_Caps", "[DWH] SERVERLESS_WORKGROUP must be 3-64 lowercase"),
    ],
)
def test_serverless_bad_config(stubbed, run, cfg_path, key, value, message):
    aws, stub, _ = stubbed
    set_cfg(cfg_path, "DWH", key, value)
    code, _, err = run("create", "--serverless", aws=aws)
    assert code == 2 and message in err
    stub.assert_no_pending_responses()


def test_serverless_base_rpu_defaults_to_8(aws_env, cfg_path):
    text = cfg_path.read_text().replace("SERVERLESS_BASE_RPU = 8\n", "")
    cfg_path.write_text(text)
    assert IacConfig(cfg_path).serverless().base_rpu == 8
