"""docs/redshift.md stays honest: every row cites AWS and a test, and every test it names exists."""

import re

import pytest
from helpers import ROOT

DOC = (ROOT / "docs" / "redshift.md").read_text(encoding="utf-8")
ROWS = [line for line in DOC.splitlines() if re.match(r"\| \d+ \|", line)]
NAMED_TESTS = sorted(set(re.findall(r"`(tests/\w+\.py)(?:::(\w+))?`", DOC)))

#: What issue 11 asks the table to cover: its nine points and the other differences it names.
TOPICS = [
    "TRUNCATE",
    "Timestamps as text",
    "Declared keys",
    "Trailing spaces",
    "Load-error reports",
    "MAXERROR",
    "Serverless base capacity",
    "COMPUPDATE, STATUPDATE, encodings",
    "Non-string JSON into VARCHAR",
    "Unsupported PostgreSQL features, functions and data types",
    "LOCK",
]


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split(" | ")]


def test_the_rows_are_numbered_in_order_and_complete():
    assert [int(cells(row)[0]) for row in ROWS] == list(range(1, len(ROWS) + 1))
    assert all(len(cells(row)) == 8 and all(cells(row)) for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[cells(row)[1] for row in ROWS])
def test_every_row_cites_an_aws_page_says_how_it_is_handled_and_names_a_test(row):
    _, _, _, _, handled, docs, tests, _ = cells(row)
    assert re.search(r"https://docs\.aws\.amazon\.com/redshift/latest/[\w-]+/[\w-]+\.html", docs)
    assert re.match(r"(Reproduced locally|Written around|Refused|Documented only)", handled)
    assert "`tests/" in tests


@pytest.mark.parametrize("path, name", NAMED_TESTS, ids=[f"{p}::{n}" if n else p for p, n in NAMED_TESTS])
def test_every_test_the_doc_names_exists(path, name):
    assert (ROOT / path).is_file(), path
    if name:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), f"{path}::{name}"


@pytest.mark.parametrize("topic", TOPICS)
def test_every_difference_issue_11_names_has_a_row(topic):
    assert any(topic in cells(row)[1] for row in ROWS), topic


def test_every_check_the_doc_names_is_one_verify_py_runs_and_each_is_named():
    source = (ROOT / "verify.py").read_text(encoding="utf-8")
    assumptions = set(re.findall(r'Verdict\(\s*"([^"]+)"', source))
    named = {name for row in ROWS for name in re.findall(r'"([^"]+)"', cells(row)[7])}
    assert len(assumptions) >= 10
    assert named - assumptions == set(), "rows name a check verify.py does not run"
    assert assumptions - named == set(), "a check of verify.py that no row names"


def test_the_readme_links_it():
    assert "(docs/redshift.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
