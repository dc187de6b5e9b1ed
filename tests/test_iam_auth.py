"""[CLUSTER] AUTH = iam: the scripts log in with a user and password AWS issued for the run.

The "Redshift" here is the session's real PostgreSQL server, reached through RedshiftWarehouse,
with a login role named as Redshift names IAM users. AWS answers through moto where it
implements the call (GetClusterCredentials) and botocore's Stubber where it does not
(GetClusterCredentialsWithIAM, Redshift Serverless GetCredentials): whatever user and password
AWS hands out is what psycopg2 logs in with.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import boto3
import psycopg2
import pytest
from aws_helpers import REGION, no_aws_environment
from botocore.stub import Stubber
from helpers import REDSHIFT, python_output, run_script
from moto import mock_aws

import etl
from dwh.config import ConfigError, load_settings
from dwh.local.server.connection import admin_params
from dwh.ops.run import connect
from dwh.redshift import iam_auth

IAM_USER = "IAM:alice"
CLUSTER = "sparkify-dwh"
WORKGROUP = "sparkify"


pytestmark = pytest.mark.usefixtures("fresh_iam_credentials")


@pytest.fixture
def db_role(local_server):
    """A login role named as Redshift names an IAM user; returns a function that sets its password."""
    admin = psycopg2.connect(**admin_params(local_server))
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute(f'DROP ROLE IF EXISTS "{IAM_USER}"')
    cur.execute(f'CREATE ROLE "{IAM_USER}" LOGIN IN ROLE {local_server.user}')

    def set_password(password: str) -> None:
        cur.execute(f'ALTER ROLE "{IAM_USER}" PASSWORD %s', (password,))

    yield set_password
    cur.execute(f'DROP ROLE IF EXISTS "{IAM_USER}"')
    admin.close()


@pytest.fixture
def iam_config(make_config, local_server):
    """A Redshift target with AUTH = iam whose endpoint is the local server."""

    def make(**cluster: str):
        values = {
            **REDSHIFT,
            ("CLUSTER", "HOST"): local_server.host,
            ("CLUSTER", "DB_PORT"): str(local_server.port),
            ("CLUSTER", "DB_NAME"): local_server.dbname,
            ("CLUSTER", "DB_PASSWORD"): "",
            ("CLUSTER", "SSLMODE"): "disable",
            ("CLUSTER", "AUTH"): "iam",
            ("AWS", "REGION"): REGION,
        }
        values.update({("CLUSTER", key.upper()): value for key, value in cluster.items()})
        return make_config(values, name="iam.cfg")

    return make


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    no_aws_environment(monkeypatch, tmp_path)


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def stubbed(config) -> tuple[iam_auth.IamCredentials, Stubber]:
    """The credentials object the scripts will use for this config, its AWS client under a Stubber."""
    credentials = iam_auth.credentials_for(load_settings(config).redshift)
    stubber = Stubber(credentials.client)
    stubber.activate()
    return credentials, stubber


def issued(password: str, seconds: int = 900, serverless: bool = False) -> dict:
    expiration = datetime.now(UTC) + timedelta(seconds=seconds)
    if serverless:
        return {"dbUser": IAM_USER, "dbPassword": password, "expiration": expiration}
    return {"DbUser": IAM_USER, "DbPassword": password, "Expiration": expiration}


def current_user(config) -> str:
    with connect(load_settings(config)) as warehouse:
        return warehouse.scalar("SELECT current_user")


def test_endpoint_host_names_the_cluster_or_workgroup_and_region(make_config):
    cluster = load_settings(
        make_config({**REDSHIFT, ("CLUSTER", "DB_PASSWORD"): "", ("CLUSTER", "AUTH"): "iam"})
    ).redshift
    assert cluster.password == "" and cluster.user == ""
    assert (cluster.iam.serverless, cluster.iam.name, cluster.iam.region, cluster.iam.db_user) == (
        False,
        "sparkify-dwh",
        "us-west-2",
        None,
    )
    host = "sparkify.123456789012.eu-central-1.redshift-serverless.amazonaws.com"
    workgroup = load_settings(make_config({**REDSHIFT, ("CLUSTER", "HOST"): host, ("CLUSTER", "AUTH"): "iam"})).redshift
    assert (workgroup.iam.serverless, workgroup.iam.name, workgroup.iam.region) == (True, "sparkify", "eu-central-1")
    password = load_settings(make_config(REDSHIFT)).redshift
    assert password.iam is None and password.password == "Secret-Passw0rd"


@pytest.mark.parametrize(
    "values,named",
    [
        ({("CLUSTER", "AUTH"): "kerberos"}, "[CLUSTER] AUTH must be password or iam"),
        ({("CLUSTER", "HOST"): "warehouse.example.com"}, "set [CLUSTER] CLUSTER_IDENTIFIER"),
        ({("CLUSTER", "CLUSTER_IDENTIFIER"): "a", ("CLUSTER", "WORKGROUP"): "abc"}, "both set"),
        ({("CLUSTER", "CLUSTER_IDENTIFIER"): "Bad--name"}, "[CLUSTER] CLUSTER_IDENTIFIER"),
        ({("CLUSTER", "IAM_LOGIN"): "root"}, "[CLUSTER] IAM_LOGIN must be identity or db_user"),
        ({("CLUSTER", "WORKGROUP"): "sparkify", ("CLUSTER", "IAM_LOGIN"): "db_user"}, "needs a provisioned cluster"),
        ({("CLUSTER", "IAM_AUTO_CREATE"): "true"}, "only with IAM_LOGIN = db_user"),
        ({("CLUSTER", "IAM_AUTO_CREATE"): "maybe", ("CLUSTER", "IAM_LOGIN"): "db_user"}, "must be true or false"),
    ],
)
def test_bad_iam_settings_name_the_key(make_config, values, named):
    with pytest.raises(ConfigError) as caught:
        load_settings(make_config({**REDSHIFT, ("CLUSTER", "AUTH"): "iam", **values}))
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_cluster_credentials_with_iam_reach_psycopg2(iam_config, db_role):
    config = iam_config(cluster_identifier=CLUSTER)
    db_role("Issued-for-this-run-1")
    credentials, stubber = stubbed(config)
    stubber.add_response(
        "get_cluster_credentials_with_iam",
        issued("Issued-for-this-run-1"),
        {"ClusterIdentifier": CLUSTER, "DbName": "sparkify", "DurationSeconds": 900},
    )
    assert current_user(config) == IAM_USER
    stubber.assert_no_pending_responses()
    assert current_user(config) == IAM_USER  # still valid: no second call (the Stubber would refuse it)
    assert credentials.calls == 1


def test_serverless_get_credentials_reach_psycopg2(iam_config, db_role):
    config = iam_config(workgroup=WORKGROUP)
    db_role("Serverless-issued-2")
    credentials, stubber = stubbed(config)
    assert credentials.client.meta.service_model.service_name == "redshift-serverless"
    stubber.add_response(
        "get_credentials",
        issued("Serverless-issued-2", serverless=True),
        {"workgroupName": WORKGROUP, "dbName": "sparkify", "durationSeconds": 900},
    )
    assert current_user(config) == IAM_USER
    stubber.assert_no_pending_responses()


def test_credentials_are_asked_again_when_they_near_expiry(iam_config, db_role):
    config = iam_config(cluster_identifier=CLUSTER)
    db_role("First-password-1")
    credentials, stubber = stubbed(config)
    expected = {"ClusterIdentifier": CLUSTER, "DbName": "sparkify", "DurationSeconds": 900}
    stubber.add_response("get_cluster_credentials_with_iam", issued("First-password-1"), expected)
    stubber.add_response("get_cluster_credentials_with_iam", issued("Second-password-2"), expected)
    assert current_user(config) == IAM_USER
    db_role("Second-password-2")  # the first password no longer logs in
    credentials.clock = lambda: time.time() + 900 - iam_auth.REFRESH_MARGIN + 1
    assert current_user(config) == IAM_USER
    stubber.assert_no_pending_responses()
    assert credentials.calls == 2


def test_db_user_login_uses_get_cluster_credentials_in_moto(iam_config, db_role, fake_aws_credentials):
    with mock_aws():
        boto3.client("redshift", region_name=REGION).create_cluster(
            ClusterIdentifier=CLUSTER,
            NodeType="ra3.large",
            MasterUsername="awsuser",
            MasterUserPassword="Never-used-1",
            ClusterType="single-node",
        )
        config = iam_config(cluster_identifier=CLUSTER, iam_login="db_user", db_user="alice")
        credentials = iam_auth.credentials_for(load_settings(config).redshift)
        login = credentials()  # what moto issued: IAM:alice and a random password
        assert login["user"] == IAM_USER and len(login["password"]) >= 16
        db_role(login["password"])
        assert current_user(config) == IAM_USER
        assert credentials.calls == 1


def test_errors_are_one_line_naming_the_action_or_the_cluster(iam_config, fake_aws_credentials, capsys):
    config = iam_config(cluster_identifier=CLUSTER)
    _, stubber = stubbed(config)
    stubber.add_client_error(
        "get_cluster_credentials_with_iam",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::123456789012:user/alice is not authorized",
        http_status_code=403,
    )
    assert etl.main(["--config", str(config), "--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: access denied")
    assert "redshift:GetClusterCredentialsWithIAM" in err and f"cluster {CLUSTER} in {REGION}" in err

    iam_auth.credentials_for.cache_clear()
    with mock_aws():  # moto answers GetClusterCredentials for a cluster it does not have: ClusterNotFound
        config = iam_config(cluster_identifier=CLUSTER, iam_login="db_user", db_user="alice")
        assert etl.main(["--config", str(config), "--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"cluster {CLUSTER} in {REGION} was not found (ClusterNotFound)" in err


def test_no_aws_credentials_is_one_line(iam_config, no_aws_credentials):
    config = iam_config(cluster_identifier=CLUSTER)
    result = run_script("etl.py", config, "--check")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "AUTH = iam needs AWS credentials" in result.stderr and "aws sso login" in result.stderr


def test_no_issued_password_is_printed_or_logged(iam_config, db_role, loaded_sample, capsys, caplog):
    config = iam_config(cluster_identifier=CLUSTER)
    db_role("Do-not-print-me-7")
    _, stubber = stubbed(config)
    stubber.add_response("get_cluster_credentials_with_iam", issued("Do-not-print-me-7"))
    caplog.set_level(logging.DEBUG)
    assert etl.main(["--config", str(config), "--check"]) == 0  # a real script on issued credentials
    iam_auth.credentials_for.cache_clear()
    _, stubber = stubbed(config)
    stubber.add_response("get_cluster_credentials_with_iam", issued("Wrong-and-secret-8"))
    assert etl.main(["--config", str(config), "--check"]) == 1  # the database refuses what AWS issued
    out = capsys.readouterr()
    seen = out.out + out.err + caplog.text
    assert "refused the credentials AWS issued" in out.err
    assert "Do-not-print-me-7" not in seen and "Wrong-and-secret-8" not in seen
    assert "Do-not-print-me-7" not in repr(iam_auth.credentials_for(load_settings(config).redshift)._issued)


def test_password_path_does_not_import_boto3():
    loaded = python_output("import sys, etl, create_tables, dwh.redshift.warehouse; print('boto3' in sys.modules)")
    assert loaded.strip() == "False"


def test_serverless_refusal_names_its_action_and_the_workgroup(iam_config):
    from dwh.errors import WarehouseError

    credentials, stubber = stubbed(iam_config(workgroup=WORKGROUP))
    stubber.add_client_error("get_credentials", service_error_code="AccessDeniedException", http_status_code=400)
    with pytest.raises(WarehouseError) as caught:
        credentials()
    message = str(caught.value)
    assert "redshift-serverless:GetCredentials on workgroup sparkify in us-west-2" in message
    assert "workgroup resource" in message and "\n" not in message
