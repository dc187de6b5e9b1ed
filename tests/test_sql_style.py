"""Every SQL string the project runs follows the style in .sqlfluff: zero findings."""

import pytest
from helpers import ROOT, project_sql
from sqlfluff.core import FluffConfig, Linter

STATEMENTS = project_sql()


@pytest.fixture(scope="module")
def linter() -> Linter:
    config = FluffConfig.from_path(str(ROOT))
    assert config.get("dialect") == "redshift"
    return Linter(config=config)


def test_the_catalogue_holds_every_kind_of_statement():
    kinds = {name.split(" ")[0] for name in STATEMENTS}
    assert {"drop", "create", "copy", "insert", "daily", "check", "analytics", "system"} <= kinds


@pytest.mark.parametrize("name", STATEMENTS)
def test_statement_follows_the_sql_style(linter, name):
    findings = [
        f"line {v.line_no}, column {v.line_pos}: {v.rule_code()} {v.desc()}"
        for v in linter.lint_string(STATEMENTS[name]).get_violations()
    ]
    assert findings == [], f"{name}:\n" + "\n".join(findings)


def test_the_style_catches_what_it_is_for(linter):
    """The config is live: lower-case keywords, an implicit alias and a bare JOIN are findings."""
    codes = {v.rule_code() for v in linter.lint_string("select a.x from t a join u on u.x = a.x;\n").get_violations()}
    assert {"CP01", "AL01", "AM05"} <= codes
    unparsable = linter.lint_string("INSERT INTO users (user_id) VALUES (1) ON CONFLICT DO NOTHING;\n")
    assert "PRS" in {v.rule_code() for v in unparsable.get_violations()}
