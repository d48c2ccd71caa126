"""A/B testing: an experiment, deterministic routing (service, batch and local evaluation agree),
outcome events, results with the statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mlops_client import LocalRouter, NotFoundError

from validation.context import Context
from validation.core import Journey, expect, kv, wait_for

USERS = 400


@dataclass
class _State:
    key: str


def journey(ctx: Context) -> Journey:
    j = Journey("ab", ctx.table)
    s = _State(ctx.name("ab"))
    ab = ctx.mlops.ab_testing
    users = [f"{s.key}-user-{i}" for i in range(USERS)]

    @j.step("create and start an experiment")
    def create() -> str:
        ab.create_experiment(
            {
                "key": s.key,
                "name": s.key,
                "variants": [
                    {"name": "control", "weight": 0.5, "model_version": "1"},
                    {"name": "treatment", "weight": 0.5, "model_version": "2"},
                ],
                "metrics": [{"name": "conversion", "type": "binary"}],
                "primary_metric": "conversion",
            }
        )
        started = ab.start(s.key)
        expect(started.status == "running", f"status {started.status}")
        return kv(experiment=s.key, status=started.status)

    @j.step("route: deterministic, batch and local evaluation agree")
    def route() -> str:
        first = [ab.route(s.key, u).variant for u in users[:20]]
        again = [ab.route(s.key, u).variant for u in users[:20]]
        batch = ab.route_batch(s.key, users)
        with LocalRouter(ab, s.key) as router:
            local = [router.assign(u).variant for u in users]
        served = [a.variant for a in batch]
        expect(first == again, "the same user got different variants")
        expect(served[:20] == first, "batch routing differs from single routing")
        expect(local == served, "local evaluation differs from the service")
        split = Counter(served)
        expect(min(split.values()) > USERS * 0.35, f"split {dict(split)} is far from 50/50")
        return kv(users=USERS, split=dict(split), same_again=True, local_agrees=True)

    @j.step("send outcome events")
    def events() -> str:
        rows = [
            {
                "event_id": f"{u}-conversion",
                "experiment": s.key,
                "user_id": u,
                "metric": "conversion",
                "value": int(i % 3 == 0),
            }
            for i, u in enumerate(users)
        ]
        sent = ab.send_events(rows)
        again = ab.send_events(rows[:10])
        expect(sent.accepted == USERS, f"accepted {sent.accepted} of {USERS}")
        expect(again.duplicates == 10, f"resent events: {again}")
        return kv(accepted=sent.accepted, resent_duplicates=again.duplicates)

    @j.step("results: exposures, lift, p-value, SRM check")
    def results() -> str:
        res = wait_for(
            "every routed user among the exposures",
            lambda: (r := ab.results(s.key)) and sum(v.exposures for v in r.variants) >= USERS and r,
            timeout=30,
        )
        comparison = res.metric("conversion").comparisons[0]
        expect(comparison.error is None and comparison.p_value is not None, f"comparison {comparison}")
        srm = (res.sample_ratio_mismatch or {}).get("p_value")
        return kv(
            exposures={v.name: v.exposures for v in res.variants},
            p_value=round(comparison.p_value or 0, 4),
            srm_p=round(srm, 4) if srm is not None else None,
        )

    @j.on_cleanup("stop and archive the test experiment")
    def cleanup() -> str:
        try:
            ab.stop(s.key)
            ab.archive(s.key)
        except NotFoundError:
            return "nothing created"
        return f"archived {s.key} (experiments are archived, not deleted)"

    return j
