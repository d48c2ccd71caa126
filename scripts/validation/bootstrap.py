"""Let `python3 scripts/test_*.py` work outside the workspace's virtualenv (as the platform
document writes it): without `mlops_client` importable, re-run under the repository's `.venv`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def venv() -> None:
    if importlib.util.find_spec("mlops_client") is not None:
        return
    python = ROOT / ".venv" / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != python.parents[1].resolve():
        sys.exit(subprocess.call([str(python), *sys.argv]))
    sys.exit(
        "mlops_client is not installed: run `make install`, then `uv run python " + " ".join(sys.argv) + "`"
    )
