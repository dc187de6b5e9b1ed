"""``iac_setup.py create --auth iam`` leaves dwh.cfg ready for temporary database credentials.

Against moto: the cluster create makes is the one the scripts then ask GetClusterCredentials
about, for the admin user create made.
"""

from __future__ import annotations

import json

import pytest
from aws_helpers import ACCOUNT, CLUSTER_ID, REGION, read_cfg

from dwh.config import load_settings
from dwh.iac.db_login import login_keys, login_statement
from dwh.iac.settings import DbSpec
from dwh.redshift import iam_auth

pytestmark = pytest.mark.usefixtures("fresh_iam_credentials")


def printed_statement(out: str) -> dict:
    block = out[out.index("needs this IAM statement") :].split("\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        lines.append(line)
    return json.loads("\n".join(lines))


def test_create_with_auth_iam_writes_the_login_and_prints_the_statement(moto_aws, run, cfg_path):
    code, out, err = run("create", "--set-target", "--auth", "iam")
    assert code == 0, err
    cfg = read_cfg(cfg_path)
    assert cfg["CLUSTER"]["AUTH"] == "iam" and cfg["CLUSTER"]["IAM_LOGIN"] == "db_user"
    assert cfg["WAREHOUSE"]["TARGET"] == "redshift"
    statement = printed_statement(out)
    assert statement["Action"] == "redshift:GetClusterCredentials"
    assert statement["Resource"] == [
        f"arn:aws:redshift:{REGION}:{ACCOUNT}:dbuser:{CLUSTER_ID}/awsuser",
        f"arn:aws:redshift:{REGION}:{ACCOUNT}:dbname:{CLUSTER_ID}/sparkify",
    ]

    # The scripts' settings now name that cluster (parsed from HOST) and get credentials for its admin user.
    connection = load_settings(cfg_path).redshift
    assert connection.iam is not None and connection.password == ""
    assert (connection.iam.name, connection.iam.region, connection.iam.db_user) == (CLUSTER_ID, REGION, "awsuser")
    issued = iam_auth.credentials_for(connection)()
    assert issued["user"] == "IAM:awsuser" and issued["password"]
    assert issued["password"] not in out + err


def test_create_without_auth_leaves_auth_alone(moto_aws, run, cfg_path):
    before = dict(read_cfg(cfg_path)["CLUSTER"])
    code, out, err = run("create")
    assert code == 0, err
    after = dict(read_cfg(cfg_path)["CLUSTER"])
    assert {key: after.get(key) for key in ("auth", "iam_login")} == {
        key: before.get(key) for key in ("auth", "iam_login")
    }
    assert "IAM statement" not in out


def test_create_auth_password_switches_back(moto_aws, run, cfg_path):
    assert run("create", "--auth", "iam")[0] == 0
    assert run("create", "--auth", "password")[0] == 0
    assert read_cfg(cfg_path)["CLUSTER"]["AUTH"] == "password"


def test_serverless_login_is_the_identity_on_the_workgroup_arn():
    assert login_keys("iam", serverless=True) == {("CLUSTER", "AUTH"): "iam", ("CLUSTER", "IAM_LOGIN"): "identity"}
    arn = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/0a1b2c3d-0000-4000-8000-000000000000"
    statement = login_statement(
        region=REGION, account=ACCOUNT, name="sparkify", db=DbSpec("sparkify", "awsuser", 5439), workgroup_arn=arn
    )
    assert statement["Action"] == "redshift-serverless:GetCredentials" and statement["Resource"] == arn


def test_auth_choice_is_validated(run):
    with pytest.raises(SystemExit) as caught:
        run("create", "--auth", "kerberos")
    assert caught.value.code == 2
