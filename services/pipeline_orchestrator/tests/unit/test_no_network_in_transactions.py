"""The scheduling pass and the API routes run inside database transactions, so the code they are
made of must not reach the network: no HTTP client, no platform client, no platform step. Calls
to other services go through ``engine/tracking.py`` (after the pass commits) or an executor
(after the pass commits). A check of the imports keeps it that way."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline_orchestrator

PACKAGE = Path(pipeline_orchestrator.__file__).parent
NETWORK = (
    "httpx",
    "requests",
    "urllib.request",
    "mlops_client",
    "pipeline_orchestrator.worker.platform_steps",
)
# the modules allowed to call out: they do so on their own threads, outside any transaction
# (the retraining monitor asks the registry between its claim and its decision transactions)
OUTSIDE_TRANSACTIONS = {PACKAGE / "engine" / "tracking.py", PACKAGE / "retraining" / "peers.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_code_that_runs_in_transactions_imports_no_network_client() -> None:
    offenders = {}
    for folder in ("engine", "api", "pipelines", "runs", "triggers", "worker_api", "retraining"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            if path in OUTSIDE_TRANSACTIONS:
                continue
            found = {name for name in _imports(path) if name.startswith(NETWORK)}
            if found:
                offenders[str(path.relative_to(PACKAGE))] = sorted(found)
    assert offenders == {}
