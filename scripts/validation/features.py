"""Feature store: entity, feature set, ingestion, materialization, online reads, push,
point-in-time-correct training data, feature service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mlops_client import NotFoundError

from validation.context import Context
from validation.core import Journey, expect, kv, wait_for


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _State:
    entity: str
    feature_set: str
    service: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    created: list[tuple[str, str]] = field(default_factory=list)


def journey(ctx: Context) -> Journey:
    j = Journey("features", ctx.table)
    s = _State(ctx.name("user"), ctx.name("user_features"), ctx.name("churn_service"))
    fs = ctx.mlops.features
    early, late = s.now - timedelta(days=2), s.now - timedelta(hours=1)
    refs = [f"{s.feature_set}:age", f"{s.feature_set}:avg_session_duration"]

    @j.step("create an entity and a feature set")
    def define() -> str:
        fs.create_entity(s.entity, join_keys=["user_id"])
        s.created.append(("entity", s.entity))
        created = fs.create_feature_set(
            s.feature_set, {"age": "int", "avg_session_duration": "float"}, entity=s.entity, ttl="30d"
        )
        s.created.append(("feature set", s.feature_set))
        return kv(entity=s.entity, feature_set=created.name, version=created.version)

    @j.step("ingest rows into the offline store")
    def ingest() -> str:
        result = fs.ingest(
            s.feature_set,
            [
                {"user_id": "u1", "event_timestamp": _iso(early), "age": 31, "avg_session_duration": 12.5},
                {"user_id": "u1", "event_timestamp": _iso(late), "age": 32, "avg_session_duration": 14.0},
                {"user_id": "u2", "event_timestamp": _iso(late), "age": 45, "avg_session_duration": 3.2},
            ],
        )
        expect(result.rows_written == 3, f"rows_written={result.rows_written}")
        return kv(rows_written=result.rows_written, event_time=result.event_time)

    @j.step("materialize to the online store (job with progress)")
    def materialize() -> str:
        job = fs.materialize(s.feature_set)
        done = fs.wait_for_job(job.id, timeout=60)
        expect(done.status == "SUCCEEDED", f"job {done.id} {done.status}: {done.error}")
        return kv(
            job=done.id, status=done.status, rows=f"{done.rows_done}/{done.rows_total}", percent=done.percent
        )

    @j.step("online read: the newest values")
    def online() -> str:
        answer = fs.online([{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": "nobody"}], features=refs)
        values = answer.values()
        expect(values[0] == {"age": 32, "avg_session_duration": 14.0}, f"u1 -> {values[0]}")
        expect(values[1] == {"age": 45, "avg_session_duration": 3.2}, f"u2 -> {values[1]}")
        missing = answer.results[2].statuses
        expect(set(missing.values()) == {"MISSING"}, f"unknown entity statuses {missing}")
        return kv(u1=values[0], u2=values[1], nobody=missing.get("age"))

    @j.step("push a row: online at once")
    def push() -> str:
        pushed = fs.push(
            s.feature_set,
            [{"user_id": "u3", "event_timestamp": _iso(s.now), "age": 27, "avg_session_duration": 8.1}],
        )
        got = wait_for(
            "the pushed row online",
            lambda: fs.get_online_features([{"user_id": "u3"}], features=refs)[0].get("age") == 27,
            timeout=10,
        )
        return kv(online_updated=pushed.online_updated, read_back=got)

    @j.step("point-in-time-correct training data")
    def historical() -> str:
        rows = [
            {"user_id": "u1", "event_timestamp": _iso(early + timedelta(hours=1)), "label": 1},
            {"user_id": "u1", "event_timestamp": _iso(s.now), "label": 0},
            {"user_id": "nobody", "event_timestamp": _iso(s.now), "label": 0},
        ]
        records = fs.historical(rows, features=refs).records()
        got = [(r["age"], r["avg_session_duration"]) for r in records]
        expect(got == [(31, 12.5), (32, 14.0), (None, None)], f"point-in-time values {got}")
        return kv(rows=len(records), values=got)

    @j.step("feature service: online values by service")
    def service() -> str:
        created = fs.create_feature_service(s.service, [f"{s.feature_set}:*"])
        s.created.append(("feature service", s.service))
        values = fs.online({"user_id": ["u1"]}, feature_service=s.service).values()
        expect(values == [{"age": 32, "avg_session_duration": 14.0}], f"by service: {values}")
        return kv(service=created.name, version=created.version, u1=values[0])

    @j.on_cleanup("clean up the test feature service, set and entity")
    def cleanup() -> str:
        return delete_created(ctx, s.created)

    return j


def delete_created(ctx: Context, created: list[tuple[str, str]]) -> str:
    fs = ctx.mlops.features
    delete = {
        "feature service": fs.delete_feature_service,
        "feature set": lambda name: fs.delete_feature_set(name, force=True),
        "entity": fs.delete_entity,
    }
    done = []
    for kind, name in reversed(created):
        try:
            delete[kind](name)
        except NotFoundError:
            continue
        done.append(name)
    return f"deleted {', '.join(done) or 'nothing'}"
