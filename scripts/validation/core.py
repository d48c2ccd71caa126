"""Steps, journeys and the pass/fail table they print."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from mlops_client import MlopsError

EVIDENCE_CHARS = 400
NAME_WIDTH = 64


class NotAvailable(Exception):
    """The platform lacks a feature the step needs: reported as "not available: ..." (a FAIL)."""


class CheckFailed(Exception):
    """What the platform answered is not what the journey expects."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def run_prefix(now: datetime | None = None) -> str:
    """`validate-<UTC timestamp>`: every object a run creates starts with it."""
    return "validate-" + (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True)
class Result:
    group: str
    name: str
    ok: bool
    ms: float
    evidence: str


@dataclass
class Step:
    """One check: `run` returns its evidence; `probe` (optional) raises NotAvailable when the
    platform lacks what the step needs, and is asked even when an earlier step failed, so the
    table says what is missing rather than only that the step did not run."""

    name: str
    run: Callable[[], str]
    probe: Callable[[], None] | None = None
    needs: str | None = None
    """Run when this earlier step passed, whatever else failed (default: every earlier step)."""


class Table:
    """Prints one row per result as it arrives, and keeps them for the summary."""

    def __init__(self, out: TextIO = sys.stdout, verbose: bool = False) -> None:
        self.out = out
        self.verbose = verbose
        self.results: list[Result] = []
        self.started = time.monotonic()

    def header(self) -> None:
        print(f"\n{'result':<6} {'ms':>8}  {'check':<{NAME_WIDTH}}  evidence", file=self.out)
        print(f"{'-' * 6} {'-' * 8}  {'-' * NAME_WIDTH}  {'-' * 40}", file=self.out, flush=True)

    def add(self, result: Result) -> None:
        self.results.append(result)
        status = "ok" if result.ok else "FAIL"
        name = f"{result.group}: {result.name}"
        print(
            f"{status:<6} {result.ms:>8.0f}  {name:<{NAME_WIDTH}} {result.evidence}",
            file=self.out,
            flush=True,
        )

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        failed = self.failed
        line = f"\n{len(self.results)} checks: {len(self.results) - len(failed)} ok, {len(failed)} FAIL"
        line += f" in {seconds:.1f} s"
        for r in failed:
            line += f"\n  FAIL {r.group}: {r.name}: {r.evidence}"
        return line


def describe(exc: BaseException) -> str:
    if isinstance(exc, NotAvailable):
        return f"not available: {exc}"
    if isinstance(exc, MlopsError):
        text = f"{exc.status} {exc.code}: {exc.message}"
        if exc.details:
            text += f" {exc.details}"
        return text
    if isinstance(exc, CheckFailed | TimeoutError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 3] + "..."


@dataclass
class Journey:
    """Steps run in order; after a failure the rest are reported as not run (or not available,
    from their probe). `cleanup` steps always run."""

    group: str
    table: Table
    steps: list[Step] = field(default_factory=list)
    cleanup: list[Step] = field(default_factory=list)

    def step(
        self, name: str, probe: Callable[[], None] | None = None, needs: str | None = None
    ) -> Callable[[Callable[[], str]], None]:
        def add(fn: Callable[[], str]) -> None:
            self.steps.append(Step(name, fn, probe, needs))

        return add

    def on_cleanup(self, name: str) -> Callable[[Callable[[], str]], None]:
        def add(fn: Callable[[], str]) -> None:
            self.cleanup.append(Step(name, fn))

        return add

    def run(self) -> bool:
        first_failure: str | None = None
        passed: set[str] = set()
        try:
            for step in self.steps:
                blocked = first_failure if step.needs is None else _unless_passed(step.needs, passed)
                if blocked is not None:
                    self._blocked(step, blocked)
                elif self._run(step):
                    passed.add(step.name)
                if step.name not in passed and first_failure is None:
                    first_failure = step.name
        finally:
            for step in self.cleanup:
                self._run(step)
        return first_failure is None

    def _run(self, step: Step) -> bool:
        started = time.perf_counter()
        try:
            if step.probe is not None:
                step.probe()
            evidence, ok = step.run(), True
        except Exception as exc:
            evidence, ok = describe(exc), False
            if self.table.verbose and not isinstance(exc, NotAvailable | CheckFailed | MlopsError):
                traceback.print_exc()
        self.table.add(
            Result(self.group, step.name, ok, (time.perf_counter() - started) * 1000, _clip(evidence))
        )
        return ok

    def _blocked(self, step: Step, blocked: str) -> None:
        evidence = f"not run: needs '{blocked}'"
        started = time.perf_counter()
        if step.probe is not None:
            try:
                step.probe()
            except Exception as exc:
                evidence = f"{describe(exc)} (and not run: needs '{blocked}')"
        self.table.add(
            Result(self.group, step.name, False, (time.perf_counter() - started) * 1000, _clip(evidence))
        )


def _unless_passed(needed: str, passed: set[str]) -> str | None:
    return None if needed in passed else needed


def wait_for(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll `fn` until it returns something truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def kv(**values: Any) -> str:
    """Evidence as `key=value` pairs."""
    return " ".join(f"{k}={v}" for k, v in values.items())
