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


class StallingS3:
    """An S3 endpoint on loopback that lists one object and then never answers its GET."""

    LISTING = (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>stalled</Name><Prefix>log_data</Prefix>'
        "<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>log_data/day.json</Key>"
        "<Size>10</Size></Contents></ListBucketResult>"
    )

    def __init__(self):
        import http.server
        import threading

        listing, gets = self.LISTING.encode(), []
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):
                if "list-type" in handler.path:
                    handler.send_response(200)
                    handler.send_header("Content-Length", str(len(listing)))
                    handler.end_headers()
                    handler.wfile.write(listing)
                    return
                gets.append(handler.path)
                self.release.wait(30)  # the stall: no answer until the test ends

            def log_message(handler, *args):
                pass

        self.gets = gets
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.release.set()
        self.server.shutdown()


def test_a_stalled_s3_read_fails_within_its_timeout_naming_the_object(loaded_sample, make_config):
    from helpers import SAMPLE, run_script

    stalling = StallingS3()
    try:
        config = make_config(
            {
                ("LOCAL", "LOG_DATA"): "s3://stalled/log_data",
                ("LOCAL", "LOG_JSONPATH"): str(SAMPLE / "log_json_path.json"),
                ("LOCAL", "S3_ENDPOINT_URL"): stalling.url,
                ("LOCAL", "S3_ANONYMOUS"): "true",
                ("LOCAL", "S3_READ_TIMEOUT"): "1",
            },
            name="stalled.cfg",
        )
        result = run_script("etl.py", config)
    finally:
        stalling.close()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: COPY staging_events: cannot read s3://stalled/log_data/day.json: S3 did not answer within 1 s, "
        "also when asked again (ReadTimeoutError); [LOCAL] S3_READ_TIMEOUT sets how long to wait"
    )
    assert len(stalling.gets) > 1 and set(stalling.gets) == {"/stalled/log_data/day.json"}
