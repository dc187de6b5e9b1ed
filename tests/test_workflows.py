"""The public CI workflows: their steps are the README's commands, and the offline checks that
`tasks.py lint` runs on them (GitHub's workflow schema, zizmor's security audit) really catch faults."""

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

import tasks

CI = ROOT / ".github" / "workflows" / "ci.yml"
GOOD_STEPS = """
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - run: python tasks.py test
"""


def program(name: str) -> str:
    return str(tasks.venv_program(name, Path(sys.executable).parent.parent))


def workflow(tmp_path, steps: str = GOOD_STEPS, extra: str = "") -> Path:
    path = tmp_path / "wf.yml"
    path.write_text(
        f"name: t\non: push\npermissions:\n  contents: read\njobs:\n  j:\n    runs-on: ubuntu-latest{extra}{steps}"
    )
    return path


def check(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([program(name), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_ci_runs_the_readme_commands_in_order_the_wheel_check_and_the_benchmark():
    runs = [line.split("run:", 1)[1].strip() for line in CI.read_text().splitlines() if line.strip().startswith("run:")]
    tasks_run = ("test", "lint", "run", "stop", "wheels", "test -m benchmark")
    assert runs == [f"python tasks.py {task}" for task in tasks_run]
    readme = (ROOT / "README.md").read_text()
    assert all(f"python3 tasks.py {task}" in readme for task in tasks_run)


def test_a_sound_workflow_passes_both_checks(tmp_path):
    path = workflow(tmp_path)
    assert check("check-jsonschema", "--builtin-schema", "vendor.github-workflows", path).returncode == 0
    assert check("zizmor", "--offline", path).returncode == 0


def test_the_schema_check_catches_a_misspelt_key(tmp_path):
    path = workflow(tmp_path, GOOD_STEPS.replace("steps:", "stepz:"))
    assert check("check-jsonschema", "--builtin-schema", "vendor.github-workflows", path).returncode != 0


@pytest.mark.parametrize(
    "fault,steps",
    [
        ("an action pinned by tag", GOOD_STEPS.replace("@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2", "@v4")),
        ("credentials left in the checkout", GOOD_STEPS.replace("persist-credentials: false", "fetch-depth: 1")),
        (
            "template injection",
            GOOD_STEPS.replace("python tasks.py test", "echo ${{ github.event.head_commit.message }}"),
        ),
    ],
)
def test_the_audit_catches(tmp_path, fault, steps):
    result = check("zizmor", "--offline", workflow(tmp_path, steps))
    assert result.returncode != 0, f"zizmor passed {fault}:\n{result.stdout}"


REDSHIFT = ROOT / ".github" / "workflows" / "redshift.yml"


def steps_of(path: Path) -> list[dict]:
    """Each step of the workflow's one job: its name, run, if."""
    steps: list[dict] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- "):
            steps.append({})
            stripped = stripped[2:]
        key, _, value = stripped.partition(":")
        if steps and key in ("name", "run", "if", "uses"):
            steps[-1][key] = value.strip()
    return steps


def test_the_redshift_workflow_runs_the_readme_steps_and_always_tears_down():
    text = REDSHIFT.read_text()
    assert "workflow_dispatch:" in text and "\n  push:" not in text  # started by hand only: it costs money
    runs = [step["run"] for step in steps_of(REDSHIFT) if step.get("run", "").startswith(".venv/bin/python")]
    assert [run.split("|")[0].strip() for run in runs] == [
        ".venv/bin/python iac_setup.py create --serverless --set-target",
        ".venv/bin/python verify.py",
        ".venv/bin/python create_tables.py",
        ".venv/bin/python etl.py",
        ".venv/bin/python iac_setup.py delete --serverless --yes",
    ]
    last = steps_of(REDSHIFT)[-1]
    assert last["if"] == "always()" and "delete" in last["run"]
    readme = (ROOT / "README.md").read_text()
    for command in ("python iac_setup.py create", "python verify.py", "python create_tables.py", "python etl.py"):
        assert command in readme
    assert "role-to-assume: ${{ vars.AWS_ROLE_ARN }}" in text and "aws-secret-access-key" not in text
    assert text.count("id-token: write") == 1 and text.index("id-token: write") > text.index("jobs:")
