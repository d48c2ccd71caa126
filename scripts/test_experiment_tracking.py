"""Validate the experiment tracking of a running deployment: its core user journeys, one table row each.

    python3 scripts/test_experiment_tracking.py

The MLOPS_*_URL variables and MLOPS_API_KEY say where (default: the ports of `make run`).

Exit status 0 when every check passed, 1 otherwise. Test objects are named validate-<timestamp>-*.
"""

from __future__ import annotations

from validation.bootstrap import venv

venv()

from validation.cli import run_script  # noqa: E402

if __name__ == "__main__":
    run_script(["experiment_tracking"], __doc__.splitlines()[0])
