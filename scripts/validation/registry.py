"""Model registry: a version with its artifact, aliases, download with checksum, monitoring."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from mlops_client import AuthError, NotFoundError

from validation.context import Context
from validation.core import Journey, expect, kv, wait_for

ROWS = 600


@dataclass
class _State:
    model: str
    sha256: str = ""
    ids: list[str] = field(default_factory=list)


def journey(ctx: Context) -> Journey:
    j = Journey("registry", ctx.table)
    s = _State(ctx.name("registry-model"))
    registry, monitoring = ctx.mlops.registry, ctx.mlops.monitoring
    artifact = ctx.scratch / "registry-model.pkl"

    @j.step("register a version with its artifact")
    def register() -> str:
        artifact.write_bytes(random.randbytes(64 * 1024))
        s.sha256 = hashlib.sha256(artifact.read_bytes()).hexdigest()
        v = registry.register_model(
            s.model,
            version="1",
            framework="sklearn",
            path=artifact,
            metrics={"accuracy": 0.9},
            tags=["validate"],
            lineage={"run_id": "validate-run"},
        )
        got = registry.get_version(s.model, "1")
        expect(got.sha256 == s.sha256, f"stored sha256 {got.sha256} != uploaded {s.sha256}")
        expect(got.metrics.get("accuracy") == 0.9, f"metrics came back as {got.metrics}")
        return kv(
            model=s.model, version=v.version, format=got.format, bytes=got.size_bytes, sha256=s.sha256[:12]
        )

    @j.step("alias production: set, move, resolve, roll back")
    def aliases() -> str:
        registry.register_model(s.model, version="2", framework="sklearn", metrics={"accuracy": 0.92})
        registry.set_alias(s.model, "production", "1")
        registry.set_alias(s.model, "production", "2")
        moved = registry.get_alias(s.model, "production").version
        back = registry.rollback_alias(s.model, "production")
        resolved = registry.get_version(s.model, "@production").version
        expect(
            moved == "2" and back is not None and resolved == "1", f"moved={moved} rolled back to {resolved}"
        )
        return kv(moved_to=moved, rolled_back_to=resolved)

    @j.step("download the artifact and verify its sha256")
    def download() -> str:
        path = registry.download_artifact(s.model, "1", ctx.scratch / "downloaded.pkl")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        expect(digest == s.sha256, f"downloaded sha256 {digest} != {s.sha256}")
        return kv(bytes=path.stat().st_size, sha256=digest[:12])

    @j.step("search by name prefix and metric")
    def search() -> str:
        page = registry.list_models(name_prefix=s.model, metrics=["accuracy>0.85"])
        names = [m.name for m in page.items]
        expect(s.model in names, f"{s.model} not found in {names}")
        return kv(found=len(names))

    @j.step("monitoring: reference profile")
    def reference() -> str:
        rng = random.Random(1)
        rows = [
            {"age": rng.gauss(40, 10), "plan": rng.choice("abc"), "prediction": rng.randint(0, 1)}
            for _ in range(ROWS)
        ]
        summary = monitoring.set_reference(s.model, "1", rows)
        return kv(rows=summary.rows, columns=",".join(c.name for c in summary.columns))

    @j.step("monitoring: log predictions and labels")
    def predictions() -> str:
        rng = random.Random(2)
        rows = []
        for i in range(ROWS):
            rid = f"{s.model}-req-{i}"
            s.ids.append(rid)
            features = {"age": rng.gauss(55, 10), "plan": rng.choice("abc")}
            rows.append({"request_id": rid, "version": "1", "features": features, "prediction": i % 2})
        accepted = monitoring.log_predictions_sync(s.model, rows)
        labels = monitoring.log_labels(
            s.model, {rid: (i % 2 if i % 10 < 6 else 1 - i % 2) for i, rid in enumerate(s.ids)}
        )
        expect(accepted.accepted == ROWS, f"accepted {accepted.accepted} of {ROWS}")
        expect(labels.labelled == ROWS, f"labelled {labels.labelled} of {ROWS}")
        return kv(accepted=accepted.accepted, labelled=labels.labelled)

    @j.step("monitoring: drift of the shifted feature")
    def drift() -> str:
        report = wait_for(
            "the logged predictions in the drift window",
            lambda: (r := monitoring.drift(s.model, version="1", last="1h")).window.count >= ROWS and r,
            timeout=30,
        )
        expect("age" in report.drifted_features, f"age not drifted: {report.drifted_features}")
        age = next(f for f in report.features if f.feature == "age")
        return kv(
            rows=report.window.count,
            drifted=report.drifted_features,
            age_method=age.method,
            age_stat=round(age.statistic or 0, 3),
        )

    @j.step("monitoring: live accuracy beside the registered one")
    def performance() -> str:
        report = monitoring.performance(s.model, version="1", last="1h")
        live = report.metrics.get("accuracy")
        expect(live is not None and abs(live - 0.6) < 0.05, f"live accuracy {live}, expected ~0.6")
        return kv(
            live_accuracy=round(live or 0, 3), registered=0.9, labelled=report.performance.get("n_labelled")
        )

    @j.on_cleanup("clean up the test model")
    def cleanup() -> str:
        return delete_model(ctx, s.model)

    return j


def delete_model(ctx: Context, name: str) -> str:
    """Delete a test model (an admin key is needed when keys are configured: then it is kept)."""
    try:
        ctx.mlops.registry.delete_model(name)
    except NotFoundError:
        return f"{name} was not created"
    except AuthError as exc:
        return f"kept {name} (deleting a model needs an admin key: {exc.code})"
    return f"deleted {name}"
