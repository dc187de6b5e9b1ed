"""AWS fixtures: fake credentials, moto, a dwh.cfg, a recording sleep, a runner for iac_setup.py, and an
empty cache of temporary database credentials.

Nothing here ever reaches the network: credentials are fake, instance metadata is off, the
public-IP lookup is replaced, and AWS is moto (or a botocore Stubber for Redshift Serverless,
which moto does not implement). boto3, moto and iac_setup are imported only when a test asks
for these fixtures, so runs of the warehouse tests alone do not pay for them.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from aws_helpers import MY_IP, PASSWORD, REGION, FakeSleep, no_aws_environment
from helpers import ROOT

from dwh.config import PASSWORD_ENV

_SMALL_POLICIES: str | None = None


@functools.cache
def _shared_loader(search_path_string=None):
    """botocore's create_loader, made once per search path for the test process. Each iac_setup.py run
    makes a new boto3 session, whose own loader would parse AWS's service models again (EC2's alone
    takes 0.2 s); the models are the same files, so one cache serves every session."""
    from botocore.loaders import create_loader

    return create_loader(search_path_string)


_CLIENT_CLASSES: dict = {}


def _shared_client_classes(original):
    """botocore's ClientCreator._create_client_class, each class made once per service and API version
    for the test process: a client's class (a method for each of EC2's 700 operations) is the same for
    every session, and iac_setup.py makes about three clients a run (a quarter of the iac tests' time)."""

    def create_client_class(creator, service_name, service_model):
        key = (service_name, service_model.api_version)
        if key not in _CLIENT_CLASSES:
            _CLIENT_CLASSES[key] = original(creator, service_name, service_model)
        return _CLIENT_CLASSES[key]

    return create_client_class


def _small_managed_policies() -> str:
    # moto loads ~1,600 AWS-managed policies on every reset when MOTO_IAM_LOAD_MANAGED_POLICIES
    # is on (about a second per test). These tests attach only these two, so load only them.
    import moto.iam.models as iam_models

    full = json.loads(iam_models.aws_managed_policies_data)
    return json.dumps({name: full[name] for name in ("AmazonS3ReadOnlyAccess", "AdministratorAccess")})


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials, no config files, no instance metadata, a fixed public IP; AWS's service models
    parsed, and each client class built, once per test process."""
    import botocore.client
    import botocore.session

    from dwh.iac import ingress

    creator = botocore.client.ClientCreator
    monkeypatch.setattr(botocore.session, "create_loader", _shared_loader)
    monkeypatch.setattr(creator, "_create_client_class", _shared_client_classes(creator._create_client_class))

    no_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # before the mock starts
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr(ingress, "detect_public_ip", lambda timeout=5.0: MY_IP)


#: What the test region offers (DescribeOrderableClusterOptions, which moto lacks): (node type, cluster type).
OFFERED = [("ra3.large", "single-node"), ("ra3.large", "multi-node"), ("ra3.xlplus", "multi-node")]


def _orderable_options(params, **_):
    """DescribeOrderableClusterOptions answered from OFFERED, for any botocore session the test makes."""
    from botocore.awsrequest import AWSResponse

    wanted = params["body"].get("NodeType")
    options = [
        {"NodeType": node, "ClusterType": kind, "ClusterVersion": "1.0", "AvailabilityZones": []}
        for node, kind in OFFERED
        if wanted in (None, node)
    ]
    return AWSResponse("https://redshift.invalid", 200, {}, None), {"OrderableClusterOptions": options}


@pytest.fixture
def moto_aws(aws_env, monkeypatch):
    global _SMALL_POLICIES
    import moto.iam.models as iam_models
    from moto import mock_aws

    from dwh.iac import session

    if _SMALL_POLICIES is None:
        _SMALL_POLICIES = _small_managed_policies()
    monkeypatch.setattr(iam_models, "aws_managed_policies_data", _SMALL_POLICIES)
    made = session._botocore_session

    def with_orderable_options():
        botocore_session = made()
        botocore_session.register("before-call.redshift.DescribeOrderableClusterOptions", _orderable_options)
        return botocore_session

    monkeypatch.setattr(session, "_botocore_session", with_orderable_options)
    with mock_aws():
        yield


@pytest.fixture
def fresh_iam_credentials():
    """No temporary database credentials cached by dwh.redshift.iam_auth before or after the test."""
    from dwh.redshift import iam_auth

    iam_auth.credentials_for.cache_clear()
    yield
    iam_auth.credentials_for.cache_clear()


@pytest.fixture
def cfg_path(tmp_path, monkeypatch) -> Path:
    """dwh.cfg.example copied to tmp, the password coming from SPARKIFY_DB_PASSWORD."""
    path = tmp_path / "dwh.cfg"
    shutil.copy(ROOT / "dwh.cfg.example", path)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return path


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def run(cfg_path, fake_sleep, capsys):
    """run('create', '--yes', ...) -> (exit code, stdout, stderr) against cfg_path."""
    import iac_setup

    def _run(*argv: str, aws=None, public_ip=None, config: Path | None = None):
        command, rest = argv[0], list(argv[1:])
        code = iac_setup.main(
            [command, "--config", str(config or cfg_path), *rest], aws=aws, sleep=fake_sleep, public_ip=public_ip
        )
        out, err = capsys.readouterr()
        return code, out, err

    return _run
