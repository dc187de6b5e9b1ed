"""One command for the common jobs; needs nothing but Python 3.11 (on Windows, `py` for `python3`).

python3 tasks.py run     create .venv, install requirements, load the sample into the local warehouse
python3 tasks.py test    create .venv, install requirements, run the test suite
python3 tasks.py lint    ruff (lint and format check), mypy, and the GitHub workflows' schema and
                         security audit (check-jsonschema, zizmor --offline), as CI runs them
python3 tasks.py stop    stop the local warehouse server
python3 tasks.py wheels  check that every pin in requirements.txt has wheels for every supported platform
                         and Python (asks the package index, about a minute; public CI runs it, lint does not)
"""

# This file must run, far enough to say what to install, on the oldest Python a user may have
# (Apple's command-line tools ship 3.9): no syntax or library newer than Python 3.8 here.
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MINIMUM_PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"
WORKFLOWS = ROOT / ".github" / "workflows"
#: Each a program the venv installs, and its arguments; "{workflows}" stands for the workflow files.
LINT_COMMANDS = (
    ("ruff", "check", "."),
    ("ruff", "format", "--check", "."),
    ("mypy",),
    ("check-jsonschema", "--builtin-schema", "vendor.github-workflows", "{workflows}"),
    ("zizmor", "--offline", "{workflows}"),
)


def venv_program(name: str, venv: Path = VENV, platform: str = sys.platform) -> Path:
    """A program a package installed into the venv: Scripts\\NAME.exe on Windows, bin/NAME elsewhere."""
    if platform == "win32":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def venv_python(venv: Path, platform: str = sys.platform) -> Path:
    """The interpreter of a virtual environment: Scripts\\python.exe on Windows, bin/python elsewhere."""
    return venv_program("python", venv, platform)


PYTHON = venv_python(VENV)


def python_too_old(version: tuple[int, ...] | None = None) -> str | None:
    """One line saying what to install when this Python (or version) is too old, else None."""
    version = version or tuple(sys.version_info[:3])
    if version[:2] >= MINIMUM_PYTHON:
        return None
    wanted = ".".join(map(str, MINIMUM_PYTHON))
    have = ".".join(map(str, version[:3]))
    return (
        f"error: this project needs Python {wanted} or newer, this is Python {have} ({sys.executable}); "
        f"install Python {wanted}+ from https://www.python.org/downloads/ (or your package manager) "
        f"and run tasks.py with it"
    )


def ensure_venv() -> None:
    """Create .venv and install requirements.txt into it, again only when the file changed."""
    if not PYTHON.exists():
        print("Creating .venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        print("Installing requirements.txt into .venv", flush=True)
        subprocess.run(
            [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            check=True,
        )
        STAMP.write_text(wanted)


def ensure_config() -> None:
    config = ROOT / "dwh.cfg"
    if not config.exists():
        shutil.copy(ROOT / "dwh.cfg.example", config)
        config.chmod(0o600)  # it will hold the Redshift password
        print("Created dwh.cfg from dwh.cfg.example (local warehouse, bundled sample)", flush=True)


def test_workers() -> int:
    """pytest-xdist processes for the suite: one per core, at most 4 (each starts its own PostgreSQL
    server, and the suite is CPU-bound: more processes than cores gain nothing)."""
    return max(1, min(os.cpu_count() or 1, 4))


def run(*args: str) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT).returncode


def _manylinux(arch: str) -> list[str]:
    return [f"manylinux_2_{minor}_{arch}" for minor in range(17, 29)] + [f"manylinux2014_{arch}"]


def _macos(arch: str) -> list[str]:
    versions = [(11, 0), (12, 0), (13, 0), (14, 0)] + ([] if arch == "arm64" else [(10, m) for m in range(9, 16)])
    return [f"macosx_{major}_{minor}_{kind}" for major, minor in versions for kind in (arch, "universal2")]


#: Where the project must install from wheels alone: (name, pip --platform tags), each for every Python.
WHEEL_PLATFORMS = (
    ("Linux x86_64", _manylinux("x86_64")),
    ("Linux aarch64", _manylinux("aarch64")),
    ("macOS arm64", _macos("arm64")),
    ("macOS x86_64", _macos("x86_64")),
    ("Windows x64", ["win_amd64"]),
)
WHEEL_PYTHONS = ("3.11", "3.14")
PIP_SECONDS = 300  # one resolution takes 15-30 s here


def missing_wheels(requirements: Path, pip_options: tuple = (), platforms=WHEEL_PLATFORMS, pythons=WHEEL_PYTHONS):
    """What pip cannot install from wheels alone, dependencies included, per platform and Python:
    one line each, '' when all resolve; None when no package index answered at all."""

    def pip_resolves(*arguments: str) -> tuple[int, str]:
        """pip's exit code and error output; bounded in time, so a slow or silent index cannot hang it."""
        with tempfile.TemporaryDirectory() as scratch:
            command = [str(PYTHON), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
            command += ["--disable-pip-version-check", "--timeout", "20", "--retries", "2", "--target", scratch]
            command += [*pip_options, *arguments]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_SECONDS)
            except subprocess.TimeoutExpired:
                return 1, f"ERROR: pip did not finish within {PIP_SECONDS} s (a slow package index)"
            return done.returncode, done.stderr

    def resolve(target) -> str:
        (name, tags), python = target
        platform_options = [option for tag in tags for option in ("--platform", tag)]
        code, errors = pip_resolves(
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python, *platform_options,
            "-r", str(requirements),
        )  # fmt: skip
        if code == 0:
            return ""
        first = next((line for line in errors.splitlines() if line.startswith("ERROR:")), errors.strip()[-300:])
        return f"{name}, Python {python}: {first}"

    if pip_resolves("--no-deps", "pip")[0] != 0:  # every index has pip: none answered
        return None
    targets = [(platform, python) for platform in platforms for python in pythons]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [problem for problem in pool.map(resolve, targets) if problem]


def wheels() -> int:
    problems = missing_wheels(REQUIREMENTS)
    if problems is None:
        print("wheels: skipped, no package index answered", flush=True)
        return 0
    for problem in problems:
        print(f"missing wheel: {problem}", flush=True)
    if not problems:
        print(
            f"wheels: every pin resolves to wheels on {len(WHEEL_PLATFORMS)} platforms x {len(WHEEL_PYTHONS)} Pythons"
        )
    return 1 if problems else 0


def run_program(*command: str) -> int:
    return subprocess.run([str(venv_program(command[0])), *command[1:]], cwd=ROOT).returncode


def lint() -> int:
    """Run every lint command (all of them, even after a failure); non-zero if any failed."""
    workflows = sorted(str(path.relative_to(ROOT)) for path in WORKFLOWS.glob("*.yml"))
    failed = []
    for template in LINT_COMMANDS:
        command = [part for arg in template for part in (workflows if arg == "{workflows}" else [arg])]
        print(f"$ {' '.join(command)}", flush=True)
        if run_program(*command) != 0:
            failed.append(" ".join(template[:2]) if template[0] == "ruff" else template[0])
    if failed:
        print(f"lint failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


def main(argv: list[str]) -> int:
    problem = python_too_old()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    task = argv[0] if argv else "help"
    if task == "run":
        ensure_venv()
        ensure_config()
        return run("create_tables.py") or run("etl.py")
    if task == "test":
        ensure_venv()
        return run("-m", "pytest", "-n", str(test_workers()), *argv[1:])
    if task == "lint":
        ensure_venv()
        return lint()
    if task == "wheels":
        ensure_venv()
        return wheels()
    if task == "stop":
        ensure_venv()
        return run("-m", "dwh.local", "stop")
    print(__doc__)
    return 0 if task in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
