"""Validate a whole deployment of the MLOps platform: every service's health, then its core user
journeys, one table row per check with its time and evidence.

    python3 scripts/test_mlops_platform.py                   # health and every service's journeys
    python3 scripts/test_mlops_platform.py --comprehensive   # then the closed loop, step by step
    python3 scripts/test_mlops_platform.py --comprehensive --without-alerting  # no `make monitor`

The MLOPS_*_URL variables and MLOPS_API_KEY say where (default: the ports of `make run`); with
--comprehensive, MLOPS_PROMETHEUS_URL and MLOPS_ALERTMANAGER_URL too. Exit status 0 when every
check passed, 1 otherwise. Test objects are named validate-<timestamp>-* and deleted where the
APIs allow it.
"""

from __future__ import annotations

from validation.bootstrap import venv

venv()

from validation.cli import run_script  # noqa: E402
from validation.context import SERVICES  # noqa: E402

if __name__ == "__main__":
    run_script([module for module, _ in SERVICES], __doc__.splitlines()[0], loop=True)
