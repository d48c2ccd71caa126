"""How a journey reports: one row per step, the rest of a journey not run after a failure (or not
available, when its probe says what is missing), steps that need only one earlier step, cleanup
always, and the exit status."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from validation.core import CheckFailed, Journey, NotAvailable, Table, expect, run_prefix


def table() -> tuple[Table, io.StringIO]:
    out = io.StringIO()
    return Table(out), out


def step(ran: list[str], name: str, evidence: str = "") -> Callable[[], str]:
    def run() -> str:
        ran.append(name)
        return evidence

    return run


def missing() -> None:
    raise NotAvailable("no retraining policies")


def test_after_a_failure_the_rest_is_not_run_and_probes_say_what_is_missing() -> None:
    t, _ = table()
    j = Journey("loop", t)
    ran: list[str] = []
    j.step("first")(step(ran, "first", "id=1"))

    @j.step("second")
    def second() -> str:
        expect(False, "accuracy 0.5")
        return ""

    j.step("third")(step(ran, "third"))
    j.step("fourth", probe=missing)(step(ran, "fourth"))
    j.step("fifth", needs="first")(step(ran, "fifth", "done"))
    j.on_cleanup("cleanup")(step(ran, "cleanup", "deleted"))
    assert j.run() is False
    assert ran == ["first", "fifth", "cleanup"]
    rows = {r.name: (r.ok, r.evidence) for r in t.results}
    assert rows["first"] == (True, "id=1")
    assert rows["second"] == (False, "accuracy 0.5")
    assert rows["third"] == (False, "not run: needs 'second'")
    assert rows["fourth"] == (False, "not available: no retraining policies (and not run: needs 'second')")
    assert rows["fifth"] == (True, "done")
    assert rows["cleanup"] == (True, "deleted")


def test_a_probe_that_fails_makes_the_step_not_available_without_running_it() -> None:
    t, out = table()
    j = Journey("loop", t)
    j.step("alert in Prometheus", probe=missing)(lambda: "never")
    assert j.run() is False
    assert t.results[0].evidence == "not available: no retraining policies"
    row = out.getvalue().splitlines()[-1]
    assert re.match(r"FAIL +\d+  loop: alert in Prometheus +not available: no retraining policies$", row)
    assert "1 checks: 0 ok, 1 FAIL" in t.summary()


def test_unexpected_errors_become_evidence_and_a_passing_journey_passes() -> None:
    t, _ = table()
    j = Journey("x", t)
    j.step("boom")(lambda: str(1 / 0))
    assert j.run() is False
    assert t.results[0].evidence == "ZeroDivisionError: division by zero"
    ok, _ = table()
    good = Journey("y", ok)
    good.step("fine")(lambda: "k=v")
    assert good.run() is True and not ok.failed
    assert isinstance(CheckFailed("x"), Exception)


def test_test_objects_are_named_by_the_run_s_utc_timestamp() -> None:
    from datetime import UTC, datetime

    assert run_prefix(datetime(2026, 12, 7, 14, 5, 9, tzinfo=UTC)) == "validate-20261207140509"
