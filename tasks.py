"""One command for the common jobs; needs nothing but Python 3.11.

python3 tasks.py run     create .venv, install requirements, load the sample into the local warehouse
python3 tasks.py test    create .venv, install requirements, run the test suite
python3 tasks.py stop    stop the local warehouse server
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


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


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    if task == "run":
        ensure_venv()
        ensure_config()
        return run("create_tables.py") or run("etl.py")
    if task == "test":
        ensure_venv()
        return run("-m", "pytest", *argv[1:])
    if task == "stop":
        ensure_venv()
        return run("-m", "dwh.local", "stop")
    print(__doc__)
    return 0 if task in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
