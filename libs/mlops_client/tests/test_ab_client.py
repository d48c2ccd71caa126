"""AbTestingClient, LocalRouter and `mlops ab` against a real `python -m ab_testing` process."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlops_client import (
    AbTestingClient,
    Assignment,
    ConflictError,
    LocalRouter,
    MlopsClient,
    NotFoundError,
    RegistryClient,
    ServiceUnavailableError,
    ValidationError,
)
from mlops_client.ab_routing import evaluate
from mlops_client.cli import app
from mlops_kit.testing import ServiceProcess, wait_until
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture(scope="module")
def ab_url(tmp_path_factory: pytest.TempPathFactory, registry_url: str) -> Iterator[str]:
    """A real `python -m ab_testing` on SQLite, exposures flushed fast, promoting in a real registry."""
    tmp = tmp_path_factory.mktemp("client-ab")
    env = {
        "MLOPS_DATA_DIR": str(tmp),
        "MLOPS_AB_TESTING_EXPOSURE_FLUSH_SECONDS": "0.05",
        "MLOPS_MODEL_REGISTRY_URL": registry_url,
    }
    with ServiceProcess("ab_testing", env=env, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture
def ab(ab_url: str) -> Iterator[AbTestingClient]:
    with AbTestingClient(ab_url) as client:
        yield client


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """An experiment key no other test uses (tests share one service process)."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{secrets.token_hex(3)}"


def _spec(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": f"{key} test",
        "hypothesis": "v2 raises conversion",
        "model_name": "churn",
        "variants": [
            {"name": "control", "weight": 0.5, "model_version": "v1.0"},
            {"name": "treatment", "weight": 0.5, "model_version": "v2.0"},
        ],
        "metrics": [
            {"name": "conversion", "type": "binary", "direction": "higher"},
            {"name": "revenue", "type": "continuous", "direction": "higher"},
        ],
        "primary_metric": "conversion",
        **extra,
    }


USERS = [f"user_{i}" for i in range(1000)]


# experiments and routing ----------------------------------------------------------------------
def test_create_start_and_route_equals_local_evaluation(ab: AbTestingClient, key: str) -> None:
    created = ab.create_experiment(_spec(key), coverage=0.8)
    assert (created.key, created.status, created.control, created.phase) == (key, "draft", "control", 1)
    assert [v.model_version for v in created.variants] == ["v1.0", "v2.0"]
    assert ab.get_experiment(key).id == created.id == ab.get_experiment(created.id).id
    assert ab.route(key, "u1").reason == "not_running"
    started = ab.start(key)
    assert started.running and started.started_at is not None
    assert key in {e.key for e in ab.iter_experiments(status="running")}

    definition = ab.definition(key)
    assert (definition["key"], definition["status"], definition["coverage"]) == (key, "running", 0.8)
    local = [evaluate(definition, u) for u in USERS]
    remote = ab.route_batch(key, USERS)
    assert remote == local  # the service and the client run the same assignment
    assert all(isinstance(a, Assignment) for a in remote)
    assert {a.reason for a in local} == {"bucket", "coverage"}
    for user, expected in list(zip(USERS, local, strict=True))[:50]:
        assert ab.route(key, user) == expected
    with ab.local_router(key, background=False) as router:
        assert [router.assign(u) for u in USERS] == local


def test_overrides_pause_and_new_phases_reach_local_routers(ab: AbTestingClient, key: str) -> None:
    ab.create_experiment(_spec(key))
    ab.start(key)
    user = next(u for u in USERS if ab.route(key, u).variant == "control")
    seen: list[Assignment] = []
    with LocalRouter(ab, key, refresh_seconds=0.05, on_assign=seen.append) as router:
        assert ab.set_override(key, user, "treatment").variant == "treatment"
        forced = ab.route(key, user)
        assert (forced.variant, forced.model_version, forced.reason) == ("treatment", "v2.0", "override")
        _eventually(lambda: router.assign(user) == forced)
        ab.remove_override(key, user)
        assert ab.route(key, user).reason == "bucket"

        ab.pause(key)
        paused = ab.route(key, user)
        assert (paused.variant, paused.in_experiment, paused.reason) == ("control", False, "not_running")
        _eventually(lambda: router.assign(user).reason == "not_running")
        ab.start(key)

        # new weights on a running experiment open phase 2; reassign re-seeds it
        variants = [
            {"name": "control", "weight": 0.2, "model_version": "v1.0"},
            {"name": "treatment", "weight": 0.8, "model_version": "v2.0"},
        ]
        updated = ab.update_experiment(key, variants=variants, reassign=True, description="80% on v2")
        assert (updated.phase, updated.description) == (2, "80% on v2")
        assert updated.seed != key
        assert [p["number"] for p in ab.phases(key)] == [1, 2]
        _eventually(lambda: router.definition["phase"] == 2)
        assert router.last_error is None
        after = [router.assign(u) for u in USERS]
        assert after == ab.route_batch(key, USERS)
        assert 0.75 < sum(a.variant == "treatment" for a in after) / len(after) < 0.85
    assert seen and seen[-1] == after[-1]


def test_typed_errors(ab: AbTestingClient, key: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        ab.get_experiment(f"{key}-missing")
    assert missing.value.code == "EXPERIMENT_NOT_FOUND" and missing.value.status == 404
    with pytest.raises(NotFoundError):
        ab.route(f"{key}-missing", "u1")
    with pytest.raises(ValidationError) as weights:
        ab.create_experiment(
            _spec(key),
            variants=[{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.2}],
        )
    assert weights.value.status == 422
    with pytest.raises(ValidationError):
        ab.create_experiment(_spec(key), variants=[{"name": "only", "weight": 1.0}])
    ab.create_experiment(_spec(key))
    with pytest.raises(ConflictError) as exists:
        ab.create_experiment(_spec(key))
    assert exists.value.code == "EXPERIMENT_EXISTS"
    with pytest.raises(ConflictError) as transition:
        ab.pause(key)  # a draft cannot be paused
    assert transition.value.code == "INVALID_TRANSITION"
    with pytest.raises(ValidationError) as variant:
        ab.set_override(key, "u1", "no-such-variant")
    assert variant.value.code == "UNKNOWN_VARIANT"
    with pytest.raises(ValidationError):
        ab.route(key, "")
    with pytest.raises(ServiceUnavailableError):
        AbTestingClient("http://127.0.0.1:9", retries=1).get_experiment(key)


# events -----------------------------------------------------------------------------------------
class _LoseFirstAnswer(httpx.BaseTransport):
    """Delivers every request, but the first POST /api/events answer is 'lost' (a read timeout)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = 0
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path == "/api/events":
            self.sent += 1
            if self.lost == 0:
                self.lost += 1
                response.read()
                response.close()
                raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_events_are_idempotent_even_when_an_answer_is_lost(
    ab_url: str, ab: AbTestingClient, key: str
) -> None:
    ab.create_experiment(_spec(key))
    ab.start(key)
    events = [
        {"experiment": key, "user_id": u, "metric": "conversion", "value": i % 2}
        for i, u in enumerate(USERS[:300])
    ]
    transport = _LoseFirstAnswer()
    with AbTestingClient(ab_url, transport=transport) as flaky:
        first = flaky.send_events(events, batch_size=100)
    # 3 batches, the first sent twice: its resend is recognised by the generated event ids
    assert transport.sent == 4
    assert (first.accepted, first.duplicates) == (200, 100)

    mine = [
        {**e, "event_id": f"{key}-{i}", "metric": "revenue", "value": 1.5} for i, e in enumerate(events[:50])
    ]
    assert ab.send_events(mine).accepted == 50
    again = ab.send_events(mine)
    assert (again.accepted, again.duplicates) == (0, 50)

    one = ab.track(key, "user_1", "revenue", 9.5, event_id=f"{key}-one")
    assert (one.accepted, one.duplicates) == (1, 0)
    assert ab.track(key, "user_1", "revenue", 9.5, event_id=f"{key}-one").duplicates == 1
    assert ab.track(key, "user_2", "revenue", covariate=4.0).accepted == 1  # a CUPED pre-period value
    with pytest.raises(ValidationError) as unknown:
        ab.track(key, "user_1", "no_such_metric", 1)
    assert unknown.value.code == "UNKNOWN_METRIC"


# analysis -------------------------------------------------------------------------------------
def _converts(a: Assignment, rates: dict[str, int]) -> int:
    """A deterministic outcome: the user's hash decides, at `rates[variant]` percent."""
    return int(a.hash is not None and a.hash * 10_000 % 100 < rates[a.variant or ""])


def _events(key: str, assignments: list[Assignment], rates: dict[str, int]) -> list[dict[str, Any]]:
    events = []
    for a in assignments:
        events.append(
            {"experiment": key, "user_id": a.user_id, "metric": "conversion", "value": _converts(a, rates)}
        )
        events.append(
            {"experiment": key, "user_id": a.user_id, "metric": "revenue", "value": 10 * (a.hash or 0)}
        )
    return events


def test_results_power_decisions_and_promote(ab: AbTestingClient, registry: RegistryClient, key: str) -> None:
    model = f"churn-{key}"
    registry.register_model(model)
    registry.register_model(model)
    variants = [
        {"name": "control", "weight": 0.5, "model_version": "1"},
        {"name": "treatment", "weight": 0.5, "model_version": "2"},
    ]
    ab.create_experiment(_spec(key), model_name=model, variants=variants)
    ab.start(key)
    assignments = ab.route_batch(key, USERS)
    assert ab.send_events(_events(key, assignments, {"control": 10, "treatment": 40})).accepted == 2 * len(
        USERS
    )

    results = ab.results(key, method="holm", sequential=True)
    assert (results.experiment, results.phase, results.control, results.status) == (
        key,
        1,
        "control",
        "running",
    )
    assert sum(v.exposures for v in results.variants) == len(USERS)
    assert results.sample_ratio_mismatch is not None and not results.srm_flagged
    conversion = results.metric("conversion")
    assert (conversion.type, conversion.primary) == ("binary", True)
    treatment = conversion.comparison("treatment")
    assert treatment.error is None and treatment.test == "two_proportion_z"
    assert treatment.control is not None and treatment.treatment is not None
    assert treatment.control.n + treatment.treatment.n == len(USERS)
    expected = {
        name: sum(_converts(a, {"control": 10, "treatment": 40}) for a in assignments if a.variant == name)
        / sum(a.variant == name for a in assignments)
        for name in ("control", "treatment")
    }
    assert treatment.control.mean == pytest.approx(expected["control"])
    assert treatment.treatment.mean == pytest.approx(expected["treatment"])
    assert treatment.rel_lift is not None and treatment.rel_lift_ci is not None
    assert treatment.rel_lift_ci[0] is not None and treatment.rel_lift_ci[0] < treatment.rel_lift
    assert treatment.p_value is not None and treatment.p_value < 0.001
    assert treatment.adjusted_p_value is not None and treatment.adjusted_p_value >= treatment.p_value
    assert treatment.sequential is not None and treatment.sequential.p_value is not None
    assert treatment.chance_to_win is not None and treatment.chance_to_win > 0.99
    assert results.metric("revenue").comparison("treatment").test == "welch_t"
    with pytest.raises(KeyError):
        results.metric("nope")
    assert ab.results(key, mann_whitney=True, sequential=False).metric("revenue").comparisons[0].mann_whitney

    planned = ab.power(baseline=0.1, mde=0.1)
    assert planned.required_per_variant is not None and planned.required_per_variant > 1000
    assert planned.required_total == 2 * planned.required_per_variant
    detectable = ab.power(baseline=0.1, n_per_variant=planned.required_per_variant)
    assert detectable.minimum_detectable_effect == pytest.approx(0.1, rel=0.05)
    own = ab.power(key, baseline=0.1, mde=0.1)
    assert (own.experiment, own.metric, own.required_per_variant) == (
        key,
        "conversion",
        planned.required_per_variant,
    )
    with pytest.raises(ValidationError):
        ab.power(baseline=2.0, mde=0.1)  # a binary baseline is a rate

    decision = ab.promote(key)  # the winner on the primary metric
    assert decision.kind == "promote" and decision.details["variant"] == "treatment"
    assert decision.details["chosen_by"] == "primary_metric"
    assert registry.get_alias(model, "production").version == "2"
    assert ab.promote(key, "control", alias="staging").details["variant"] == "control"
    assert registry.get_alias(model, "staging").version == "1"
    assert [d.kind for d in ab.decisions(key)] == ["promote", "promote"]


def test_promote_without_a_winner_is_refused(ab: AbTestingClient, key: str) -> None:
    ab.create_experiment(_spec(key))
    ab.start(key)
    assignments = ab.route_batch(key, USERS[:200])
    ab.send_events(_events(key, assignments, {"control": 20, "treatment": 20}))
    with pytest.raises(ConflictError) as refused:
        ab.promote(key)
    assert refused.value.code == "NO_WINNER" and refused.value.details["metric"] == "conversion"


# the CLI ----------------------------------------------------------------------------------------
def _cli(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--ab-testing-url", url, "ab", *args])
    if "--json" in args:
        return result.exit_code, result.stdout, result.stderr
    # rich wraps long lines to the terminal's width
    return result.exit_code, " ".join(result.stdout.split()), " ".join(result.stderr.split())


def test_cli_create_list_show_lifecycle_route(
    ab_url: str, ab: AbTestingClient, key: str, tmp_path: Path
) -> None:
    file = tmp_path / "experiment.json"
    file.write_text(json.dumps(_spec(key)))
    code, out, err = _cli(ab_url, "create", str(file))
    assert code == 0 and f"created experiment {key} (draft, 2 variants)" in out, err
    code, out, _ = _cli(ab_url, "list", "--status", "draft", "--json")
    assert code == 0 and key in {e["key"] for e in json.loads(out)}
    code, out, _ = _cli(ab_url, "show", key)
    assert code == 0 and "treatment" in out and "v2.0" in out and "primary" in out
    code, out, _ = _cli(ab_url, "start", key)
    assert code == 0 and f"{key} is running" in out
    code, out, _ = _cli(ab_url, "route", key, "user_7", "--json")
    assert code == 0 and json.loads(out) == ab.route(key, "user_7").to_dict()
    code, out, _ = _cli(ab_url, "route", key, "user_7")
    assert code == 0 and "bucket" in out
    code, out, _ = _cli(ab_url, "pause", key)
    assert code == 0 and "paused" in out
    code, out, _ = _cli(ab_url, "stop", key)
    assert code == 0 and "stopped" in out
    code, _, err = _cli(ab_url, "start", key)
    assert code == 1 and "INVALID_TRANSITION" in err
    code, _, err = _cli(ab_url, "show", f"{key}-missing")
    assert code == 1 and "EXPERIMENT_NOT_FOUND" in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert _cli(ab_url, "create", str(bad))[0] == 2


def test_cli_results(ab_url: str, ab: AbTestingClient, key: str) -> None:
    ab.create_experiment(_spec(key))
    ab.start(key)
    ab.send_events(
        {"experiment": key, "user_id": u, "metric": "conversion", "value": int(i % 3 == 0)}
        for i, u in enumerate(USERS)
    )
    code, out, err = _cli(ab_url, "results", key, "--method", "bh")
    assert code == 0, err
    assert "conversion (binary primary, higher is better)" in out
    assert "treatment" in out and "chance to win" in out and "sample ratio mismatch" in out
    code, out, _ = _cli(ab_url, "results", key, "--json")
    assert code == 0 and json.loads(out)["experiment"] == key
    code, _, err = _cli(ab_url, "promote", key)
    assert code == 1 and "NO_WINNER" in err
    code, out, _ = _cli(ab_url, "decisions", key, "--json")
    assert code == 0 and json.loads(out) == []


# LocalRouter without a service ------------------------------------------------------------------
class _Definitions:
    """Stands in for AbTestingClient.definition: answers, then fails while `down` is set."""

    def __init__(self, definition: dict[str, Any]):
        self.current = definition
        self.down = False
        self.calls = 0

    def definition(self, experiment: str) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise ServiceUnavailableError(0, "SERVICE_UNREACHABLE", "down")
        return self.current


def _definition(status: str = "running", phase: int = 1) -> dict[str, Any]:
    return {
        "key": "exp",
        "seed": "exp",
        "status": status,
        "phase": phase,
        "coverage": 1.0,
        "namespace": None,
        "variants": [
            {"name": "control", "weight": 0.5, "model_version": "1"},
            {"name": "treatment", "weight": 0.5, "model_version": "2"},
        ],
        "overrides": {},
    }


def test_local_router_refreshes_lazily_and_survives_an_outage() -> None:
    source = _Definitions(_definition())
    router = LocalRouter(source, "exp", refresh_seconds=0.05, background=False)  # type: ignore[arg-type]
    assert router.assign("u1").reason == "bucket" and source.calls == 1
    assert router.assign("u2").reason == "bucket" and source.calls == 1  # fresh: no fetch
    source.current = _definition(status="paused", phase=2)
    time.sleep(0.06)
    assert router.assign("u1").reason == "not_running" and source.calls == 2
    source.down = True
    time.sleep(0.06)
    assert router.assign("u1").phase == 2  # the last definition keeps routing
    assert isinstance(router.last_error, ServiceUnavailableError)
    source.down, source.current = False, _definition(phase=3)
    assert router.refresh() and router.last_error is None and router.assign("u1").phase == 3
    router.close()


def test_local_router_refreshes_in_the_background() -> None:
    source = _Definitions(_definition())
    with LocalRouter(source, "exp", refresh_seconds=0.02) as router:  # type: ignore[arg-type]
        source.current = _definition(status="stopped", phase=4)
        _eventually(lambda: router.assign("u1").reason == "not_running")
        calls = source.calls
    time.sleep(0.1)
    assert source.calls <= calls + 1  # closed: the thread stopped
    with pytest.raises(ServiceUnavailableError):
        source.down = True
        LocalRouter(source, "exp")  # type: ignore[arg-type]  # the first fetch must succeed


def test_mlops_client_has_ab_testing(ab_url: str) -> None:
    with MlopsClient(ab_testing_url=ab_url) as client:
        assert client.ab_testing.health()["service"] == "ab_testing"


def _eventually(check: Any, timeout: float = 5.0) -> None:
    wait_until(check, timeout=timeout, what="the condition", interval=0.02, tolerate=())
