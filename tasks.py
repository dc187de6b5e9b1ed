"""One command for the common jobs; needs nothing but Python 3.11 (on Windows, `py` for `python3`).

python3 tasks.py run     create .venv, install requirements, load the sample into the local warehouse
python3 tasks.py test    create .venv, install requirements, run the test suite
python3 tasks.py lint    ruff (lint and format check), mypy, and the GitHub workflows' schema and
                         security audit (check-jsonschema, zizmor --offline), as CI runs them
python3 tasks.py stop    stop the local warehouse server
"""

# This file must run, far enough to say what to install, on the oldest Python a user may have
# (Apple's command-line tools ship 3.9): no syntax or library newer than Python 3.8 here.
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
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


def venv_python(venv: Path, platform: str = sys.platform) -> Path:
    """The interpreter of a virtual environment: Scripts\\python.exe on Windows, bin/python elsewhere."""
    if platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


PYTHON = venv_python(VENV)


def venv_program(name: str, venv: Path = VENV, platform: str = sys.platform) -> Path:
    """A program a package installed into the venv: Scripts\\NAME.exe on Windows, bin/NAME elsewhere."""
    if platform == "win32":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


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


def run(*args: str) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT).returncode


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
        return run("-m", "pytest", *argv[1:])
    if task == "lint":
        ensure_venv()
        return lint()
    if task == "stop":
        ensure_venv()
        return run("-m", "dwh.local", "stop")
    print(__doc__)
    return 0 if task in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
