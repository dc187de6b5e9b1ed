"""Compacted song files load exactly the rows the one-song files load."""

from helpers import SAMPLE, load_with_scripts, python_output

from dwh.s3.compact import main as compact

COMPACT_DB = "compacted_songs"


def test_compacted_song_files_load_the_same_rows(tmp_path, make_config, query, loaded_sample):
    pretty = tmp_path / "songs" / "pretty.json"
    pretty.parent.mkdir()
    pretty.write_text(
        '{\n  "song_id": "SOEXTRA", "num_songs": 1, "artist_id": "AREXTRA",\n'
        '  "title": "Extra \\u00e9", "artist_name": 112, "duration": 1.5, "year": 0,\n'
        '  "artist_location": "", "artist_latitude": null, "artist_longitude": null\n}\n'
    )
    assert compact([str(SAMPLE / "song_data"), str(tmp_path / "compacted"), "--files", "3"]) == 0
    assert compact([str(pretty.parent), str(tmp_path / "compacted" / "extra"), "--files", "1"]) == 0
    parts = sorted((tmp_path / "compacted").rglob("*.json"))
    assert len(parts) == 4
    assert sum(len(p.read_text().splitlines()) for p in parts) == 1944
    config = make_config(
        {("LOCAL", "DB_NAME"): COMPACT_DB, ("LOCAL", "SONG_DATA"): str(tmp_path / "compacted")}, name="c.cfg"
    )
    load_with_scripts(config)
    columns = (
        "song_id, title, artist_id, artist_name, artist_location, artist_latitude, artist_longitude, duration, year"
    )
    compacted = query(f"SELECT {columns} FROM staging_songs WHERE song_id <> 'SOEXTRA' ORDER BY song_id", db=COMPACT_DB)
    assert compacted == query(f"SELECT {columns} FROM staging_songs ORDER BY song_id")
    assert query("SELECT title, artist_name FROM staging_songs WHERE song_id = 'SOEXTRA'", db=COMPACT_DB) == [
        ("Extra \u00e9", "112")
    ]


def test_compacting_nothing_is_an_error(tmp_path, capsys):
    assert compact([str(tmp_path / "none"), str(tmp_path / "out")]) == 1
    assert "matches no file" in capsys.readouterr().err


def test_redshift_side_tools_import_nothing_from_the_local_warehouse():
    loaded = python_output("import sys, dwh.s3.compact, dwh.s3.manifest; print(sorted(sys.modules))")
    assert "'dwh.s3.sources'" in loaded and "'dwh.s3.json_documents'" in loaded
    assert "dwh.local" not in loaded
