"""Shared fixtures and helpers for the iac_setup.py tests (tests/test_iac_*.py).

Import what you need by name: ``from iac_fixtures import moto_aws, cfg_path, ...``.
Nothing here ever reaches the network: credentials are fake, instance metadata is off, the
public-IP lookup is replaced, and AWS is moto (or a botocore Stubber for Redshift Serverless,
which moto does not implement).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import iac_setup
from dwh.config import PASSWORD_ENV
from dwh.iac import ingress
from dwh.iac.session import _botocore_session

ROOT = Path(__file__).resolve().parents[1]

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-west-2"
MY_IP = "203.0.113.7"
PASSWORD = "Sparkify-Test-Pw1"
ROLE_NAME = "sparkify-dwh-s3-read"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
CLUSTER_ID = "sparkify-dwh"
S3_READ_ARN = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def _small_managed_policies() -> str:
    # moto loads ~1,600 AWS-managed policies on every reset when MOTO_IAM_LOAD_MANAGED_POLICIES
    # is on (about a second per test). These tests attach only these two, so load only them.
    import moto.iam.models as iam_models

    full = json.loads(iam_models.aws_managed_policies_data)
    return json.dumps({name: full[name] for name in ("AmazonS3ReadOnlyAccess", "AdministratorAccess")})


_SMALL_POLICIES: str | None = None


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials, no config files, no instance metadata, a fixed public IP."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # before the mock starts
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr(ingress, "detect_public_ip", lambda timeout=5.0: MY_IP)


@pytest.fixture
def moto_aws(aws_env, monkeypatch):
    global _SMALL_POLICIES
    import moto.iam.models as iam_models
    from moto import mock_aws

    if _SMALL_POLICIES is None:
        _SMALL_POLICIES = _small_managed_policies()
    monkeypatch.setattr(iam_models, "aws_managed_policies_data", _SMALL_POLICIES)
    with mock_aws():
        yield


@pytest.fixture
def cfg_path(tmp_path, monkeypatch) -> Path:
    """dwh.cfg.example copied to tmp, the password coming from SPARKIFY_DB_PASSWORD."""
    path = tmp_path / "dwh.cfg"
    shutil.copy(ROOT / "dwh.cfg.example", path)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return path


def session(**kwargs):
    """A boto3 session sharing iac_setup's parsed API models (moto resets boto3's default one,
    and re-parsing the EC2 model for every test costs seconds)."""
    import boto3

    kwargs.setdefault("region_name", REGION)
    return boto3.session.Session(botocore_session=_botocore_session(), **kwargs)


class FakeSleep:
    """Records the delays iac_setup asked for instead of sleeping."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def run(cfg_path, fake_sleep, capsys):
    """run('create', '--yes', ...) -> (exit code, stdout, stderr) against cfg_path."""

    def _run(*argv: str, aws=None, public_ip=None, config: Path | None = None):
        command, rest = argv[0], list(argv[1:])
        code = iac_setup.main(
            [command, "--config", str(config or cfg_path), *rest], aws=aws, sleep=fake_sleep, public_ip=public_ip
        )
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def set_cfg(path: Path, section: str, key: str, value: str) -> None:
    """Set one key of a test dwh.cfg (plain text edit, independent of iac_setup's writer)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    current = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
        elif current == section and stripped.split("=")[0].strip().upper() == key.upper():
            lines[index] = f"{key} = {value}"
            break
    else:
        raise AssertionError(f"[{section}] {key} not in {path}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_cfg(path: Path):
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return parser


def redshift_backend():
    from moto.redshift.models import redshift_backends

    return redshift_backends[ACCOUNT][REGION]


def set_cluster_status(identifier: str, status: str) -> None:
    redshift_backend().clusters[identifier].status = status
