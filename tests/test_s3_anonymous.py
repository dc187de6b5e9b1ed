"""A public bucket reads without any AWS credentials when S3_ANONYMOUS / --anonymous asks for unsigned requests.

moto's S3 runs in-process with its fake credentials switched off, and the environment holds
none either (no keys, no profile, empty config files, no instance metadata), so a signed
request fails exactly as on a machine without an AWS account.
"""

from __future__ import annotations

import json
import shutil

import boto3
import pytest
from aws_helpers import REGION, no_aws_environment
from helpers import SAMPLE, row_counts
from moto import mock_aws

import create_tables
import etl
from dwh.s3.compact import main as compact
from dwh.s3.manifest import main as write_manifest

PUBLIC = "sparkify-public"
PRIVATE = "sparkify-private"
ANONYMOUS_DB = "anonymous_s3"
DISK_DB = "anonymous_disk"
# Enough of the sample to load every table (3 days of events, 53 song files), not all 1,974 files:
# what is proven is that unsigned requests read a public bucket, not how many files they read.
SUBSET = ["log_json_path.json", "log_data/2018/11/2018-11-0[123]-events.json", "song_data/A/A/[AB]/*.json"]
SUBSET_FILES = sorted(path.relative_to(SAMPLE).as_posix() for pattern in SUBSET for path in SAMPLE.glob(pattern))


@pytest.fixture(scope="module")
def no_credentials(tmp_path_factory):
    """An environment in which boto3 finds no credentials anywhere (for this module's tests)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        no_aws_environment(monkeypatch, tmp_path_factory.mktemp("aws"))
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        yield


@pytest.fixture(scope="module")
def buckets(no_credentials):
    """A bucket of public-read objects holding part of the sample (laid out as s3://udacity-dend), and a
    private one."""
    with mock_aws(config={"core": {"mock_credentials": False}}):
        # The uploader's keys live in this client only, never in the environment the code under test sees.
        owner = boto3.client("s3", region_name=REGION, aws_access_key_id="owner", aws_secret_access_key="owner")
        for bucket in (PUBLIC, PRIVATE):
            owner.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for key in SUBSET_FILES:
            owner.put_object(Bucket=PUBLIC, Key=key, Body=(SAMPLE / key).read_bytes(), ACL="public-read")
        for key in ("log_json_path.json", "log_data/x.json", "song_data/x.json"):
            owner.put_object(Bucket=PRIVATE, Key=key, Body=(SAMPLE / "log_json_path.json").read_bytes())
        yield owner


def s3_config(make_config, anonymous: bool, bucket: str = PUBLIC):
    return make_config(
        {
            ("LOCAL", "DB_NAME"): ANONYMOUS_DB,
            ("LOCAL", "LOG_DATA"): f"s3://{bucket}/log_data",
            ("LOCAL", "LOG_JSONPATH"): f"s3://{bucket}/log_json_path.json",
            ("LOCAL", "SONG_DATA"): f"s3://{bucket}/song_data",
            ("LOCAL", "S3_ANONYMOUS"): "true" if anonymous else "false",
            ("S3", "REGION"): REGION,
        },
        name=f"s3-{anonymous}.cfg",
    )


def test_the_sample_loads_from_a_public_bucket_without_credentials(buckets, make_config, query, tmp_path, capsys):
    config = s3_config(make_config, anonymous=True)
    assert create_tables.main(["--config", str(config)]) == 0
    assert etl.main(["--config", str(config)]) == 0, capsys.readouterr().err

    disk = tmp_path / "same-files"  # the same files from disk: the reference
    for key in SUBSET_FILES:
        (disk / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE / key, disk / key)
    from_disk = make_config(
        {
            ("LOCAL", "DB_NAME"): DISK_DB,
            ("LOCAL", "LOG_DATA"): str(disk / "log_data"),
            ("LOCAL", "LOG_JSONPATH"): str(disk / "log_json_path.json"),
            ("LOCAL", "SONG_DATA"): str(disk / "song_data"),
        },
        name="disk.cfg",
    )
    assert create_tables.main(["--config", str(from_disk)]) == 0
    assert etl.main(["--config", str(from_disk)]) == 0, capsys.readouterr().err
    loaded = row_counts(query, db=ANONYMOUS_DB)
    assert loaded == row_counts(query, db=DISK_DB)
    assert loaded["staging_songs"] == len([key for key in SUBSET_FILES if key.startswith("song_data/")])
    assert all(loaded.values()), loaded


def test_without_the_option_the_error_names_both_ways_out(buckets, make_config, capsys):
    config = s3_config(make_config, anonymous=False)
    assert create_tables.main(["--config", str(config)]) == 0
    capsys.readouterr()
    assert etl.main(["--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert f"s3://{PUBLIC}/" in err
    assert "no AWS credentials found" in err and "aws configure" in err
    assert "S3_ANONYMOUS = true" in err


def test_unsigned_requests_to_a_private_bucket_say_it_is_not_public(buckets, make_config, capsys):
    config = s3_config(make_config, anonymous=True, bucket=PRIVATE)
    assert create_tables.main(["--config", str(config)]) == 0
    capsys.readouterr()
    assert etl.main(["--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "the bucket is not public" in err and f"s3://{PRIVATE}/" in err


def test_compact_and_manifest_take_anonymous(buckets, tmp_path, capsys):
    prefix = f"s3://{PUBLIC}/song_data/A/A"
    assert write_manifest([prefix, str(tmp_path / "m.manifest"), "--region", REGION]) == 1
    assert "S3_ANONYMOUS = true (or --anonymous" in capsys.readouterr().err
    assert write_manifest([prefix, str(tmp_path / "m.manifest"), "--region", REGION, "--anonymous"]) == 0
    listed = json.loads((tmp_path / "m.manifest").read_text())["entries"]
    assert listed and all(entry["url"].startswith(prefix) for entry in listed)

    assert compact([prefix, str(tmp_path / "c"), "--files", "2", "--region", REGION]) == 1
    assert "no AWS credentials found" in capsys.readouterr().err
    assert compact([prefix, str(tmp_path / "c"), "--files", "2", "--region", REGION, "--anonymous"]) == 0
    lines = sum(len(p.read_text().splitlines()) for p in (tmp_path / "c").glob("*.json"))
    assert lines == len(listed)

    private = f"s3://{PRIVATE}/song_data"
    assert compact([private, str(tmp_path / "p"), "--region", REGION, "--anonymous"]) == 1
    assert "the bucket is not public" in capsys.readouterr().err


def test_unsigned_requests_are_for_that_client_only(buckets):
    from dwh.s3.sources import S3Objects, SourceError

    assert S3Objects(REGION, anonymous=True).list(f"s3://{PUBLIC}/log_data")
    with pytest.raises(SourceError, match="no AWS credentials found"):
        S3Objects(REGION).list(f"s3://{PUBLIC}/log_data")
