"""Health of each service: `/health` and `/ready` (its own backends)."""

from __future__ import annotations

from validation.context import SERVICES, Context, answer
from validation.core import Journey, Step, kv


def health(ctx: Context, services: list[str] | None = None) -> Journey:
    journey = Journey("platform", ctx.table)
    for module, label in SERVICES:
        if services is None or module in services:
            journey.steps.append(_health_step(ctx, module, label))
    # every service is checked, whatever the others answer
    return journey


def _health_step(ctx: Context, module: str, label: str) -> Step:
    def check() -> str:
        http = ctx.http(module)
        live = answer(http.get("/health"))
        ready = http.get("/ready")
        body = ready.json() if ready.content else {}
        if ready.status_code != 200:
            raise RuntimeError(f"/ready answered {ready.status_code}: {body}")
        return kv(url=str(http.base_url).rstrip("/"), status=live.get("status"), version=live.get("version"))

    return Step(f"{label} /health and /ready", check)
