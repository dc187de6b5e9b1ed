"""Every SQL string the project runs is Redshift SQL in the style of .sqlfluff: zero findings.

One lint per statement checks both: sqlfluff parses with the redshift dialect first, and what it
cannot parse is a PRS finding.
"""

import pytest
from helpers import parses_as_redshift, project_sql, sql_findings, sql_linter, sql_violations

STATEMENTS = project_sql()


def test_the_linter_reads_the_redshift_dialect_from_the_project_config():
    assert sql_linter().config.get("dialect") == "redshift"


def test_the_catalogue_holds_every_kind_of_statement():
    kinds = {name.split(" ")[0] for name in STATEMENTS}
    assert {"drop", "create", "copy", "insert", "daily", "check", "analytics", "system"} <= kinds


@pytest.mark.parametrize("name", STATEMENTS)
def test_statement_is_redshift_sql_in_the_house_style(name):
    findings = sql_findings(STATEMENTS[name])
    assert findings == [], f"{name}:\n" + "\n".join(findings)


def test_the_style_catches_what_it_is_for():
    """The config is live: lower-case keywords, an implicit alias and a bare JOIN are findings."""
    codes = {v.rule_code() for v in sql_violations("select a.x from t a join u on u.x = a.x;\n")}
    assert {"CP01", "AL01", "AM05"} <= codes


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (user_id) VALUES (1) ON CONFLICT DO NOTHING;",
        "CREATE TABLE t (id BIGSERIAL, PRIMARY KEY (id)) DISTSTYLE NONSENSE;",
        "COPY staging_events FROM 's3://b/p' IAM_ROLE FORMAT AS JSON 'auto';",
    ],
)
def test_what_redshift_rejects_does_not_parse_and_is_a_finding(statement):
    assert not parses_as_redshift(statement)
    assert "PRS" in {v.rule_code() for v in sql_violations(statement)}
