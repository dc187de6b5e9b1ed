"""Plain helpers for the AWS tests: an environment without AWS credentials, and for the iac_setup.py tests
(tests/test_iac_*.py) the fake account's names, a boto3 session on iac_setup's parsed API models, a recording
sleep, dwh.cfg edits and moto's Redshift state.

The AWS fixtures (aws_env, moto_aws, cfg_path, fake_sleep, run) live in tests/plugins/aws.py.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-west-2"
MY_IP = "203.0.113.7"
PASSWORD = "Sparkify-Test-Pw1"
ROLE_NAME = "sparkify-dwh-s3-read"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
CLUSTER_ID = "sparkify-dwh"
S3_READ_ARN = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def no_aws_environment(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """An environment in which boto3 finds no credentials anywhere: no AWS_* variable, empty config
    and credentials files (folder holds them), no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = folder / "empty-aws-file"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def session(**kwargs):
    """A boto3 session sharing iac_setup's parsed API models (moto resets boto3's default one,
    and re-parsing the EC2 model for every test costs seconds)."""
    import boto3

    from dwh.iac.session import _botocore_session

    kwargs.setdefault("region_name", REGION)
    return boto3.session.Session(botocore_session=_botocore_session(), **kwargs)


class FakeSleep:
    """Records the delays the code asked for instead of sleeping."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


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


def read_cfg(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return parser


def redshift_backend():
    from moto.redshift.models import redshift_backends

    return redshift_backends[ACCOUNT][REGION]


def set_cluster_status(identifier: str, status: str) -> None:
    redshift_backend().clusters[identifier].status = status
