"""`tasks.py wheels` (part of lint): every pin must install from wheels on every supported platform and
Python. Against a fake index here: a pin with a wheel for Linux x86_64 and Python 3.11 only is reported
for every other target; and with no index answering, the check says it cannot tell instead of failing."""

import zipfile
from pathlib import Path

import pytest

import tasks

FAST = ("--isolated", "--retries", "0", "--timeout", "2", "--no-cache-dir")


def fake_wheel(index: Path, name: str, tag: str) -> None:
    """A wheel pip accepts: its files, METADATA and WHEEL, nothing else."""
    with zipfile.ZipFile(index / f"{name}-1.0-{tag}.whl", "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", "")
        wheel.writestr(f"{name}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        wheel.writestr(f"{name}-1.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
        wheel.writestr(f"{name}-1.0.dist-info/RECORD", "")


@pytest.fixture
def index(tmp_path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    fake_wheel(folder, "pip", "py3-none-any")  # what the check asks first, to know an index answers
    fake_wheel(folder, "linux311only", "cp311-cp311-manylinux_2_17_x86_64")  # one platform, one Python
    fake_wheel(folder, "everywhere", "py3-none-any")
    return folder


def requirements(tmp_path, *pins: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("".join(f"{pin}  # a comment\n" for pin in pins))
    return path


def platform(name: str) -> tuple:
    return next(entry for entry in tasks.WHEEL_PLATFORMS if entry[0] == name)


def test_a_pin_without_a_wheel_for_some_platforms_is_reported_for_each_of_them(tmp_path, index):
    # Two platforms by two Pythons (each target is a pip run of about a second): the platform's tags
    # and the Python version both reach pip, and only the targets the pin misses are reported.
    pins = requirements(tmp_path, "everywhere==1.0", "linux311only==1.0")
    targets = (platform("Linux x86_64"), platform("Windows x64"))
    problems = tasks.missing_wheels(pins, (*FAST, "--no-index", "--find-links", str(index)), targets, ("3.11", "3.14"))
    reported = {problem.split(":")[0] for problem in problems}
    assert reported == {"Linux x86_64, Python 3.14", "Windows x64, Python 3.11", "Windows x64, Python 3.14"}
    assert all("linux311only==1.0" in problem for problem in problems)


def test_the_check_asks_for_the_pythons_the_ci_matrix_runs():
    ci = (tasks.WORKFLOWS / "ci.yml").read_text()
    matrix = next(line for line in ci.splitlines() if line.strip().startswith("python: ["))
    assert matrix.split(":", 1)[1].strip() == "[" + ", ".join(f'"{python}"' for python in tasks.WHEEL_PYTHONS) + "]"


def test_pins_with_wheels_everywhere_pass(tmp_path, index):
    # An empty list, not None ("cannot tell"). One target is enough: the test above shows that a
    # platform where every pin resolves gets no line, for each Python.
    pins = requirements(tmp_path, "everywhere==1.0")
    options = (*FAST, "--no-index", "--find-links", str(index))
    assert tasks.missing_wheels(pins, options, tasks.WHEEL_PLATFORMS[-1:], tasks.WHEEL_PYTHONS[:1]) == []


def test_without_an_index_the_check_cannot_tell(tmp_path):
    pins = requirements(tmp_path, "everywhere==1.0")
    assert tasks.missing_wheels(pins, (*FAST, "--index-url", "http://127.0.0.1:9/simple")) is None
