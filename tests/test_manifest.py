"""A song manifest, when configured, is what the songs COPY reads."""

import json

from helpers import REDSHIFT_SOURCES, SAMPLE, load_with_scripts

import sql_queries
from dwh.config import load_settings
from dwh.s3.manifest import main as write_manifest

MANIFEST_DB = "manifest_loads"


def test_redshift_copy_reads_the_manifest_when_configured():
    sources = REDSHIFT_SOURCES.__class__(
        **{**REDSHIFT_SOURCES.__dict__, "song_manifest": "s3://bucket/song_data.manifest"}
    )
    songs = sql_queries.copy_table_queries(sources)[1]
    assert "FROM 's3://bucket/song_data.manifest'" in songs and "\nMANIFEST\n" in songs


def test_etl_loads_exactly_the_files_the_manifest_lists(tmp_path, make_config, query):
    manifest = tmp_path / "songs.manifest"
    assert write_manifest([str(SAMPLE / "song_data" / "A" / "A"), str(manifest)]) == 0
    listed = json.loads(manifest.read_text())["entries"]
    assert all(entry["mandatory"] and "/song_data/A/A/" in entry["url"] for entry in listed)
    config = make_config({("LOCAL", "DB_NAME"): MANIFEST_DB, ("LOCAL", "SONG_MANIFEST"): str(manifest)}, name="m.cfg")
    assert load_settings(config).sources.song_manifest == str(manifest)
    load_with_scripts(config)
    assert query("SELECT COUNT(*) FROM staging_songs", db=MANIFEST_DB) == [(len(listed),)]
    assert 0 < len(listed) < 1943


def test_manifest_of_a_missing_prefix_is_an_error(tmp_path, capsys):
    assert write_manifest([str(tmp_path / "nothing"), str(tmp_path / "m.manifest")]) == 1
    assert "matches no file" in capsys.readouterr().err
