"""The README's experiment-tracking client example: python examples/track_with_client.py"""

from mlops_client import TrackingClient

with TrackingClient() as tracking:
    # the experiment is created if missing; the run ends FINISHED, or FAILED if the block raises
    with tracking.start_run("churn-baseline", run_name="logreg", parameters={"C": 1.0}) as run:
        for step, loss in enumerate([0.9, 0.6, 0.4]):
            run.log_metric("loss", loss, step=step)
        run.log_metrics({"accuracy": 0.93, "f1": 0.9})
        run.set_tag("team", "risk")
        run.log_artifact("examples/train.py")  # a file, or a directory
    experiment = tracking.get_experiment_by_name("churn-baseline")
    best = tracking.best_run(experiment.id, "accuracy", mode="max")
    print(best.id, [p.value for p in tracking.metric_history(experiment.id, best.id, "loss")])
