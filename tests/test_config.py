"""dwh.cfg is validated: every problem is one line naming the key, exit code 2, nothing injected."""

import pytest
from helpers import REDSHIFT, posix_only, run_script

from dwh.config import ConfigError, load_settings, sql_safe_path


def test_example_config_is_valid_and_points_at_the_bundled_sample():
    from helpers import ROOT

    settings = load_settings(ROOT / "dwh.cfg.example")
    assert settings.target == "local"
    assert settings.sources.log_data == str(ROOT / "data" / "udacity-dend" / "log_data")
    assert settings.sources.iam_role is None


def test_valid_redshift_config(make_config):
    settings = load_settings(make_config(REDSHIFT))
    assert settings.redshift.host.endswith("redshift.amazonaws.com") and settings.redshift.port == 5439
    assert settings.sources.iam_role == REDSHIFT[("IAM_ROLE", "ARN")]
    assert "Secret-Passw0rd" not in repr(settings)


@pytest.mark.parametrize(
    "key,value,named",
    [
        (("S3", "LOG_DATA"), "s3://udacity-dend/log_data' IAM_ROLE 'x", "[S3] LOG_DATA"),
        (("S3", "LOG_DATA"), "https://example.com/log_data", "[S3] LOG_DATA"),
        (("S3", "SONG_DATA"), "udacity-dend/song_data", "[S3] SONG_DATA"),
        (("S3", "LOG_JSONPATH"), "s3://b/p.json';DROP TABLE users;--", "[S3] LOG_JSONPATH"),
        (("S3", "REGION"), "us-west-2 OR 1=1", "[S3] REGION"),
        (("S3", "SONG_REGION"), "eu-west-1;DROP", "[S3] SONG_REGION"),
        (("IAM_ROLE", "ARN"), "arn:aws:iam::123:role/x", "[IAM_ROLE] ARN"),
        (("IAM_ROLE", "ARN"), "arn:aws:iam::123456789012:user/someone", "[IAM_ROLE] ARN"),
        (("IAM_ROLE", "ARN"), "", "[IAM_ROLE] ARN is empty"),
        (("CLUSTER", "HOST"), "", "[CLUSTER] HOST is empty"),
        (("CLUSTER", "HOST"), "host;rm -rf", "[CLUSTER] HOST"),
        (("CLUSTER", "DB_PORT"), "54x", "[CLUSTER] DB_PORT"),
        (("CLUSTER", "DB_PORT"), "70000", "[CLUSTER] DB_PORT"),
        (("CLUSTER", "DB_PORT"), "5²", "[CLUSTER] DB_PORT"),
        (("CLUSTER", "CONNECT_TIMEOUT"), "0", "[CLUSTER] CONNECT_TIMEOUT"),
        (("CLUSTER", "SSLMODE"), "maybe", "[CLUSTER] SSLMODE"),
        (("LOAD", "MAXERROR"), "-1", "[LOAD] MAXERROR"),
        (("LOAD", "ACCEPTINVCHARS"), "??", "[LOAD] ACCEPTINVCHARS"),
        (("CLUSTER", "DB_NAME"), "Robert'); DROP", "[CLUSTER] DB_NAME"),
        (("WAREHOUSE", "TARGET"), "snowflake", "[WAREHOUSE] TARGET"),
    ],
)
def test_malformed_redshift_values_are_rejected_by_key(make_config, key, value, named):
    with pytest.raises(ConfigError) as caught:
        load_settings(make_config({**REDSHIFT, key: value}))
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_password_names_the_key_and_the_environment_variable(make_config, monkeypatch):
    monkeypatch.delenv("SPARKIFY_DB_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"\[CLUSTER\] DB_PASSWORD is empty .*SPARKIFY_DB_PASSWORD"):
        load_settings(make_config({**REDSHIFT, ("CLUSTER", "DB_PASSWORD"): ""}))
    monkeypatch.setenv("SPARKIFY_DB_PASSWORD", "from-env")
    assert load_settings(make_config({**REDSHIFT, ("CLUSTER", "DB_PASSWORD"): ""})).redshift.password == "from-env"


@pytest.mark.parametrize(
    "key,value,named",
    [
        (("LOCAL", "HOST"), "0.0.0.0", "[LOCAL] HOST must be a loopback address"),
        (("LOCAL", "PORT"), "", "[LOCAL] PORT is empty"),
        (("LOCAL", "LOG_DATA"), "data/it's", "[LOCAL] LOG_DATA"),
        (("LOCAL", "SONG_DATA"), "s3://Bad_Bucket/x", "[LOCAL] SONG_DATA"),
        (("LOCAL", "S3_ENDPOINT_URL"), "ftp://x", "[LOCAL] S3_ENDPOINT_URL"),
        (("LOCAL", "DB_USER"), "Sparkify User", "[LOCAL] DB_USER"),
    ],
)
def test_malformed_local_values_are_rejected_by_key(make_config, key, value, named):
    with pytest.raises(ConfigError) as caught:
        load_settings(make_config({key: value}))
    assert named in str(caught.value)


def test_local_sources_may_be_s3_prefixes(make_config):
    settings = load_settings(
        make_config(
            {
                ("LOCAL", "SONG_DATA"): "s3://udacity-dend/song_data",
                ("LOCAL", "S3_ENDPOINT_URL"): "http://127.0.0.1:5000",
            }
        )
    )
    assert settings.sources.song_data == "s3://udacity-dend/song_data"
    assert settings.sources.s3_endpoint_url == "http://127.0.0.1:5000"


def test_missing_section_is_named(tmp_path):
    path = tmp_path / "dwh.cfg"
    path.write_text("[WAREHOUSE]\nTARGET = local\n")
    with pytest.raises(ConfigError, match=r"section \[LOCAL\] is missing"):
        load_settings(path)


@pytest.mark.parametrize("script", ["create_tables.py", "etl.py"])
def test_scripts_exit_2_with_one_line_for_missing_config(tmp_path, script):
    result = run_script(script, tmp_path / "absent.cfg")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "absent.cfg: not found; copy dwh.cfg.example" in result.stderr


def test_scripts_exit_2_naming_a_malformed_key_without_leaking_the_password(make_config):
    config = make_config({**REDSHIFT, ("IAM_ROLE", "ARN"): "not-an-arn"})
    result = run_script("etl.py", config)
    assert result.returncode == 2
    assert "[IAM_ROLE] ARN must look like arn:aws:iam::" in result.stderr
    assert "Secret-Passw0rd" not in result.stdout + result.stderr


def test_unparsable_config_file_is_reported(tmp_path):
    path = tmp_path / "dwh.cfg"
    path.write_text("TARGET = local\n")
    result = run_script("create_tables.py", path)
    assert result.returncode == 2 and "not a valid config file" in result.stderr


def test_quotes_around_values_are_accepted_as_in_the_classic_course_config(make_config):
    settings = load_settings(make_config({**REDSHIFT, ("S3", "LOG_DATA"): "'s3://udacity-dend/log_data'"}))
    assert settings.sources.log_data == "s3://udacity-dend/log_data"


@pytest.mark.parametrize("password", ["Lone%Passw0rd", "Two%%Percent0", "%(name)sPassw0rd", "100%"])
def test_a_percent_in_the_password_loads_verbatim(make_config, password):
    # configparser's default interpolation raised an uncaught InterpolationError on a lone '%'
    # and turned '%%' into '%'; the shared reader takes every value as written.
    path = make_config(REDSHIFT)
    path.write_text(path.read_text(encoding="utf-8").replace("Secret-Passw0rd", password), encoding="utf-8")
    assert load_settings(path).redshift.password == password


def test_local_paths_reach_copy_with_forward_slashes_on_windows(tmp_path):
    # Windows users write backslashes; COPY's FROM gets forward slashes, which Windows accepts too.
    assert sql_safe_path("data\\log_data", tmp_path, windows=True) == (tmp_path / "data" / "log_data").as_posix()
    assert sql_safe_path("data\\it's", tmp_path, windows=True) is None  # a quote is still refused
    assert sql_safe_path("data\\log_data", tmp_path, windows=False) is None  # elsewhere a backslash is refused
    assert sql_safe_path("data/../data/log_data", tmp_path, windows=False) == str(tmp_path / "data" / "log_data")


@posix_only("POSIX file modes")
@pytest.mark.parametrize("mode,warned", [(0o644, True), (0o640, True), (0o600, False)])
def test_a_config_holding_a_password_warns_when_others_may_read_it(loaded_sample, make_config, mode, warned):
    config = make_config({("CLUSTER", "DB_PASSWORD"): "Secret-Passw0rd"}, name="secret.cfg")
    config.chmod(mode)
    result = run_script("etl.py", config, "--history", "1")
    assert result.returncode == 0, result.stderr
    warning = f"{config} holds [CLUSTER] DB_PASSWORD and other users may read it (mode {mode:o}): run chmod 600"
    assert (warning in result.stdout) is warned
    assert "Secret-Passw0rd" not in result.stdout + result.stderr


def test_a_config_without_secrets_draws_no_warning_whatever_its_mode(loaded_sample, make_config):
    config = make_config(name="plain.cfg")
    config.chmod(0o644)
    result = run_script("etl.py", config, "--history", "1")
    assert result.returncode == 0 and "other users may read it" not in result.stdout
