"""The SQL the project builds for Redshift carries the configured role, regions and paths; that every
statement parses as Redshift SQL is checked with the style, in tests/test_sql_style.py."""

import dataclasses

from helpers import REDSHIFT_SOURCES

import sql_queries
from dwh.config import Sources

LOCAL_SOURCES = Sources(log_data="/data/log_data", log_jsonpath="/data/paths.json", song_data="/data/song_data")


def test_copy_carries_the_configured_role_region_and_paths():
    events, songs = sql_queries.copy_table_queries(REDSHIFT_SOURCES)
    assert "IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-dwh-s3-read'" in events
    assert "FORMAT AS JSON 's3://udacity-dend/log_json_path.json'" in events
    assert "REGION 'us-west-2'" in songs and "FROM 's3://udacity-dend/song_data'" in songs
    # STATUPDATE ON (issue 11, D8): staging is emptied with DELETE, so it is not "initially empty".
    assert "COMPUPDATE OFF STATUPDATE ON" in events and "COMPUPDATE OFF STATUPDATE ON" in songs
    assert "TIMEFORMAT" not in events  # ts loads as the JSON's epoch milliseconds, a BIGINT


def test_each_copy_names_the_region_of_the_files_it_reads():
    """REGION applies to every file a COPY reads, its manifest too: songs elsewhere get their own."""
    compacted = dataclasses.replace(
        REDSHIFT_SOURCES, song_manifest="s3://my-bucket/songs.manifest", song_region="eu-west-1"
    )
    events, songs = sql_queries.copy_table_queries(compacted)
    assert "REGION 'us-west-2'" in events and "eu-west-1" not in events
    assert "REGION 'eu-west-1'" in songs and "us-west-2" not in songs


def test_local_copy_uses_the_default_role_and_no_region():
    events, _ = sql_queries.copy_table_queries(LOCAL_SOURCES)
    assert "IAM_ROLE DEFAULT" in events and "REGION" not in events


def test_every_table_is_dropped_and_created():
    created = {q.split("EXISTS")[1].split("(")[0].strip() for q in sql_queries.create_table_queries}
    dropped = {q.split("EXISTS")[1].strip(" ;") for q in sql_queries.drop_table_queries}
    assert created == dropped == set(sql_queries.STAGING_TABLES + sql_queries.STAR_TABLES + sql_queries.RECORD_TABLES)
