"""verify.py: every assumption about Redshift checked by a command a user with a cluster runs once.

Against the local warehouse every verdict must hold (it claims Redshift's behaviour); against plain
PostgreSQL, where the two differ, the check fails; the scratch schema goes whatever happens; the
compare mode names the rows that differ between two warehouses' stars.
"""

import pytest
from helpers import REDSHIFT, plain_postgresql, run_script

import verify
from dwh.config import load_settings


def scratch_schemas(query, db=None) -> list:
    return query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'verify%%'", db=db)


def test_every_assumption_holds_on_the_local_warehouse_and_nothing_is_left_behind(make_config, query):
    shown = run_script("verify.py", make_config())
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("| ") and not line.startswith("| assumption")]
    verdicts = [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows]
    assert len(rows) == 12 and set(verdicts) == {"holds", "n/a"} and verdicts.count("n/a") == 1  # the IAM login
    assert shown.stdout.startswith("Warehouse: local PostgreSQL at 127.0.0.1:")
    assert scratch_schemas(query) == []


def test_the_checks_fail_where_plain_postgresql_differs_from_redshift(settings, query):
    found = {v.assumption: v for v in verify.verdicts(settings, connect=lambda s: plain_postgresql(s.local))}
    truncate = found["TRUNCATE commits the open transaction"]
    assert truncate.holds is False and truncate.observed == "0 row"  # PostgreSQL's TRUNCATE is transactional
    assert found["RTRIM'd text joins and groups alike; LENGTH counts trailing spaces"].holds is True
    assert scratch_schemas(query) == []


def test_the_scratch_schema_goes_on_ctrl_c(settings, query):
    def interrupted(scratch):
        assert scratch_schemas(query) == [(scratch.schema,)]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(verify.verdicts(settings, checks=[verify.truncate_commits, interrupted]))
    assert scratch_schemas(query) == []


def test_compare_names_the_rows_that_differ(make_config, query):
    here = make_config({("LOCAL", "DB_NAME"): "compare_here"}, name="here.cfg")
    there = make_config({("LOCAL", "DB_NAME"): "compare_there"}, name="there.cfg")
    same = run_script("verify.py", here, "--compare", str(there), "--load")
    assert same.returncode == 0, same.stderr
    assert same.stdout.count("identical") == 5 and "songplays: 6,820 rows here, 6,820 there: identical" in same.stdout

    query("UPDATE users SET level = 'free' WHERE user_id = 15; SELECT 1", db="compare_there")
    (lost,) = query(
        "DELETE FROM songs WHERE song_id = (SELECT MIN(song_id) FROM songs) RETURNING song_id", db="compare_there"
    )[0]
    changed = run_script("verify.py", here, "--compare", str(there))
    assert changed.returncode == 1
    assert changed.stderr == "error: the stars of here.cfg and there.cfg differ (above)\n"
    out = changed.stdout
    assert "users: 97 rows here, 97 there: 1 keys differ" in out
    assert (
        "  user_id 15: here (15, 'Lily', 'Koch', 'F', 'paid'," in out
        and "; there (15, 'Lily', 'Koch', 'F', 'free'," in out
    )
    assert "songs: 1,943 rows here, 1,942 there: 1 keys differ" in out and f"  song_id {lost}: here (" in out
    assert any(
        line.startswith(f"  song_id {lost}: here (") and line.endswith("; there (none)") for line in out.splitlines()
    )
    assert "songplays: 6,820 rows here, 6,820 there: identical" in out


def test_the_table_is_headed_by_the_cluster_and_its_nodes_as_aws_tells(moto_aws, make_config):
    import boto3

    settings = load_settings(make_config(REDSHIFT, name="redshift.cfg"))
    assert verify.describe(settings).endswith(
        "node type not known (ClusterNotFoundFault; python iac_setup.py status shows it)"
    )
    boto3.client("redshift", region_name="us-west-2").create_cluster(
        ClusterIdentifier="sparkify-dwh", NodeType="ra3.large", ClusterType="single-node",
        MasterUsername="awsuser", MasterUserPassword="Secret-Passw0rd",
    )  # fmt: skip
    assert verify.describe(settings) == (
        "Redshift cluster sparkify-dwh in us-west-2 "
        "(sparkify-dwh.abc123.us-west-2.redshift.amazonaws.com), 1 x ra3.large"
    )
    serverless = {**REDSHIFT, ("CLUSTER", "HOST"): "sparkify.123456789012.us-west-2.redshift-serverless.amazonaws.com"}
    assert verify.describe(load_settings(make_config(serverless, name="serverless.cfg"))).startswith(
        "Redshift Serverless workgroup sparkify in us-west-2"
    )
