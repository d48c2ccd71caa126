"""`--comprehensive`: the closed loop, step by step with evidence and timings.

features ingested and served → training pipeline (hyper-parameter search, every trial in
tracking) → best model registered, `production` → served with features from the feature store →
reference profile, traffic, injected drift and a drop in accuracy (labels) → visible in the
registry's monitoring → a retraining policy for the model → alert in Prometheus → routed by
AlertManager, the orchestrator retraining from it → the policy's evaluation: the trigger, its
evidence and its run → the run trained on the changed data, its candidate registered and a canary
started → canaried on live traffic → promoted, serving hot-swaps → a worse candidate rolled back.
The Prometheus and AlertManager steps fail with "not available: <what is missing>" where no
`make monitor` answers (see `loop_later.py`); `--without-alerting` leaves them out.
"""

from __future__ import annotations

from validation import loop_canary, loop_later, loop_steps
from validation.context import Context
from validation.core import Journey


def journey(ctx: Context) -> Journey:
    j = Journey("loop", ctx.table)
    state = loop_steps.LoopState.create(ctx)
    retraining = loop_later.Retraining()
    loop_steps.add_steps(j, ctx, state)
    loop_later.add_steps(j, ctx, state, retraining)
    loop_canary.add_steps(j, ctx, state, retraining)
    j.on_cleanup("clean up the loop's test objects")(
        lambda: f"{loop_later.cleanup(ctx, state)}; {loop_steps.cleanup(ctx, state)}"
    )
    return j
