"""COPY from s3:// prefixes on the local warehouse, against moto's S3."""

import json

import boto3
import pytest
from moto import mock_aws

from dwh.errors import LoadFailed

BUCKET = "sparkify-test"


@pytest.fixture
def s3(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-west-2")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        yield client


def copy(warehouse, source, options="FORMAT AS JSON 'auto'"):
    warehouse.execute("CREATE TABLE t (v INT, s VARCHAR(10));")
    loaded = warehouse.execute(f"COPY t FROM '{source}' IAM_ROLE default {options} REGION 'us-west-2';")
    with warehouse.cursor() as cur:
        cur.execute("SELECT v, s FROM t ORDER BY v")
        return loaded, cur.fetchall()


def test_s3_prefix_loads_every_object_under_it(s3, warehouse):
    for i in range(120):
        s3.put_object(Bucket=BUCKET, Key=f"song_data/A/{i:03}.json", Body=json.dumps({"v": i, "s": f"x{i}"}))
    s3.put_object(Bucket=BUCKET, Key="song_data_extra/z.json", Body='{"v": 1000}')
    s3.put_object(Bucket=BUCKET, Key="other/y.json", Body='{"v": 2000}')
    loaded, rows = copy(warehouse, f"s3://{BUCKET}/song_data")
    assert loaded == 121
    assert rows[0] == (0, "x0") and rows[-1] == (1000, None) and len(rows) == 121


def test_s3_jsonpaths_file_is_read_from_s3(s3, warehouse):
    s3.put_object(Bucket=BUCKET, Key="paths.json", Body=json.dumps({"jsonpaths": ["$.V", "$.S"]}))
    s3.put_object(Bucket=BUCKET, Key="log/1.json", Body='{"V": 1, "S": "one"}\n{"V": 2, "S": "two"}')
    assert copy(warehouse, f"s3://{BUCKET}/log", f"FORMAT AS JSON 's3://{BUCKET}/paths.json'") == (
        2,
        [(1, "one"), (2, "two")],
    )


def test_s3_missing_prefix_and_bucket_are_clear_errors(s3, warehouse):
    with pytest.raises(LoadFailed, match="matches no file"):
        copy(warehouse, f"s3://{BUCKET}/nothing")
    warehouse.rollback()
    with pytest.raises(LoadFailed, match="NoSuchBucket"):
        copy(warehouse, "s3://no-such-bucket-here/x")
