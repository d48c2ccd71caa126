"""`scripts/test_*.py`: run journeys against the deployment the `MLOPS_*` variables name."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from collections.abc import Callable

from mlops_client.config import service_url

from validation import platform
from validation.context import SERVICES, Context
from validation.core import Journey, Table

JOURNEYS = {  # service -> the module of validation/ with its journey
    "model_registry": "registry",
    "experiment_tracking": "tracking",
    "feature_store": "features",
    "pipeline_orchestrator": "pipelines",
    "ab_testing": "ab",
    "model_serving": "serving",
}


def journey(name: str) -> Callable[[Context], Journey]:
    module = importlib.import_module(f"validation.{name}")
    build: Callable[[Context], Journey] = module.journey
    return build


def parse(argv: list[str] | None, description: str, comprehensive: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    if comprehensive:
        parser.add_argument(
            "--comprehensive",
            action="store_true",
            help="then run the closed loop, step by step with evidence",
        )
        parser.add_argument(
            "--without-alerting",
            action="store_true",
            help="leave out the loop's Prometheus and AlertManager steps (no `make monitor`)",
        )
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks of unexpected errors")
    return parser.parse_args(argv)


def main(
    services: list[str], argv: list[str] | None = None, *, description: str = "", loop: bool = False
) -> int:
    """Health first, then each service's journey (then the closed loop with --comprehensive).
    Exit 0 when every check passed, 1 otherwise."""
    args = parse(argv, description, comprehensive=loop)
    urls = ", ".join(f"{label}={service_url(module)}" for module, label in SERVICES if module in services)
    print(f"validating {urls}")
    table = Table(verbose=args.verbose)
    with Context(table, alerting=not getattr(args, "without_alerting", False)) as ctx:
        print(f"test objects: {ctx.prefix}-*")
        table.header()
        platform.health(ctx, services).run()
        for service in services:
            journey(JOURNEYS[service])(ctx).run()
        if loop and args.comprehensive:
            journey("closed_loop")(ctx).run()
        shutil.rmtree(ctx.scratch, ignore_errors=True)
    print(table.summary())
    return 1 if table.failed else 0


def run_script(services: list[str], description: str, *, loop: bool = False) -> None:
    sys.exit(main(services, description=description, loop=loop))
