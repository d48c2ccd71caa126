from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlops_client import ConflictError, MlopsClient, NotFoundError, ServerError, TrackingClient
from mlops_client.tracking import Metric


def test_get_or_create_experiment_creates_it_once(tracking: TrackingClient, unique: str) -> None:
    first = tracking.get_or_create_experiment(unique, description="churn models", tags={"team": "growth"})
    again = tracking.get_or_create_experiment(unique, description="ignored")
    assert again.id == first.id
    assert (again.description, again.tags) == ("churn models", {"team": "growth"})
    with pytest.raises(ConflictError) as duplicate:
        tracking.create_experiment(unique)
    assert duplicate.value.code == "EXPERIMENT_EXISTS"


def test_experiment_names_with_slashes_are_found_by_name(tracking: TrackingClient, unique: str) -> None:
    name = f"/Users/o'brien/{unique}"
    created = tracking.get_or_create_experiment(name)
    assert tracking.get_or_create_experiment(name).id == created.id
    assert tracking.get_experiment_by_name(name).name == name
    with pytest.raises(NotFoundError) as missing:
        tracking.get_experiment_by_name(f"{name}/nope")
    assert missing.value.code == "EXPERIMENT_NOT_FOUND"


def test_update_delete_and_restore_an_experiment(tracking: TrackingClient, unique: str) -> None:
    created = tracking.create_experiment(unique)
    updated = tracking.update_experiment(
        created.id, name=f"{unique}-v2", description="second try", tags={"owner": "ana"}
    )
    assert (updated.name, updated.description, updated.tags) == (
        f"{unique}-v2",
        "second try",
        {"owner": "ana"},
    )
    tracking.delete_experiment(created.id)
    assert tracking.get_experiment_by_name(f"{unique}-v2").lifecycle_stage == "deleted"
    deleted = tracking.iter_experiments(name_prefix=unique, view="DELETED_ONLY")
    assert [e.id for e in deleted] == [created.id]
    assert tracking.restore_experiment(created.id).lifecycle_stage == "active"


def test_iter_experiments_follows_page_tokens(tracking: TrackingClient, unique: str) -> None:
    names = [f"{unique}-{i}" for i in range(5)]
    for name in names:
        tracking.create_experiment(name)
    first = tracking.list_experiments(name_prefix=unique, order_by=["name ASC"], limit=2)
    assert len(first.items) == 2 and first.next_page_token
    found = tracking.iter_experiments(name_prefix=unique, order_by=["name ASC"], limit=2)
    assert [e.name for e in found] == names


def test_run_context_finishes_the_run_and_records_everything(tracking: TrackingClient, unique: str) -> None:
    with tracking.start_run(
        experiment=unique,
        run_name="xgb",
        parameters={"depth": 6, "lr": 1e-3},
        tags={"team": "growth"},
        description="baseline",
        source={"git_commit": "a1b2c3d"},
        datasets=[{"name": "train", "source": "s3://data/train.parquet", "context": "training"}],
    ) as run:
        run.log_metrics({"auc": 0.90, "loss": 0.3}, step=1)
        run.log_metric("auc", 0.95, step=2)
        run.log_param("balanced", True)
        run.set_tag("stage", "dev")
        assert run.info.status == "RUNNING"
    assert run.info.status == "FINISHED"
    fetched = tracking.get_run(run.experiment_id, run.id)
    assert fetched.status == "FINISHED" and fetched.end_time is not None
    assert fetched.experiment_id == tracking.get_experiment_by_name(unique).id
    assert fetched.params == {"depth": "6", "lr": "0.001", "balanced": "True"}
    assert fetched.metrics == {"auc": 0.95, "loss": 0.3}
    assert fetched.tags["team"] == "growth" and fetched.tags["stage"] == "dev"
    assert (fetched.name, fetched.description, fetched.source.git_commit) == ("xgb", "baseline", "a1b2c3d")
    assert [(d.name, d.context) for d in fetched.datasets] == [("train", "training")]


def test_run_context_marks_the_run_failed_and_reraises(tracking: TrackingClient, unique: str) -> None:
    with pytest.raises(RuntimeError, match="diverged"), tracking.start_run(experiment=unique) as run:
        run.log_metric("loss", float("inf"))
        raise RuntimeError("diverged")
    assert tracking.get_run(run.experiment_id, run.id).status == "FAILED"


def test_interrupted_run_is_marked_killed(tracking: TrackingClient, unique: str) -> None:
    with pytest.raises(KeyboardInterrupt), tracking.start_run(experiment=unique) as run:
        raise KeyboardInterrupt
    assert tracking.get_run(run.experiment_id, run.id).status == "KILLED"


def test_run_ended_inside_the_block_keeps_its_status(tracking: TrackingClient, unique: str) -> None:
    with tracking.start_run(experiment=unique) as run:
        run.end("KILLED")
    assert tracking.get_run(run.experiment_id, run.id).status == "KILLED"


def test_start_run_needs_exactly_one_experiment(tracking: TrackingClient) -> None:
    with pytest.raises(ValueError):
        tracking.start_run()
    with pytest.raises(ValueError):
        tracking.start_run("churn", experiment_id="0")


def test_nested_runs_record_their_parent(tracking: TrackingClient, unique: str) -> None:
    with (
        tracking.start_run(experiment=unique, run_name="sweep") as parent,
        parent.start_child_run(run_name="trial-1", parameters={"lr": 0.1}) as child,
    ):
        child.log_metric("auc", 0.8)
    assert child.info.parent_run_id == parent.id
    children = tracking.iter_runs(parent.experiment_id, filter=f"tags.mlflow.parentRunId = '{parent.id}'")
    assert [r.id for r in children] == [child.id]


def test_nan_and_infinities_round_trip(tracking: TrackingClient, unique: str) -> None:
    run = tracking.start_run(experiment=unique)
    values = {"nan": math.nan, "up": math.inf, "down": -math.inf, "plain": 0.5}
    assert tracking.log_metrics(run.experiment_id, run.id, values, step=3) == 4
    latest = tracking.latest_metrics(run.experiment_id, run.id)
    assert math.isnan(latest["nan"].value) and latest["nan"].step == 3
    assert (latest["up"].value, latest["down"].value, latest["plain"].value) == (math.inf, -math.inf, 0.5)
    fetched = run.refresh()
    assert math.isnan(fetched.metrics["nan"]) and fetched.metrics["down"] == -math.inf
    assert math.isnan(tracking.metric_history(run.experiment_id, run.id, "nan")[0].value)
    assert tracking.compare_runs([run.id]).metrics["up"][run.id] == math.inf
    as_json = json.loads(fetched.model_dump_json())
    assert as_json["metrics"] == {"nan": "NaN", "up": "Infinity", "down": "-Infinity", "plain": 0.5}


def test_metric_history_follows_pages_in_step_order(tracking: TrackingClient, unique: str) -> None:
    run = tracking.start_run(experiment=unique)
    points = [Metric(key="loss", value=1 / (step + 1), step=step) for step in range(25)]
    assert tracking.log_metric_points(run.experiment_id, run.id, points) == 25
    history = tracking.metric_history(run.experiment_id, run.id, "loss", page_size=10)
    assert [p.step for p in history] == list(range(25))
    assert history[4].value == pytest.approx(0.2)


def test_batches_over_the_service_limits_are_split(tracking: TrackingClient, unique: str) -> None:
    run = tracking.start_run(experiment=unique)
    points = (Metric(key="loss", value=step, step=step) for step in range(2500))
    assert tracking.log_metric_points(run.experiment_id, run.id, points) == 2500
    assert len(tracking.metric_history(run.experiment_id, run.id, "loss")) == 2500
    params = {f"p{i}": i for i in range(150)}
    assert len(tracking.log_params(run.experiment_id, run.id, params).params) == 150


def test_metric_keys_with_slashes_have_a_history(tracking: TrackingClient, unique: str) -> None:
    with tracking.start_run(experiment=unique) as run:
        run.log_metric("train/loss", 0.7, step=0)
        run.log_metric("train/loss", 0.4, step=1)
    history = tracking.metric_history(run.experiment_id, run.id, "train/loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.7), (1, 0.4)]


def test_params_are_immutable(tracking: TrackingClient, unique: str) -> None:
    run = tracking.start_run(experiment=unique, parameters={"lr": 0.1})
    run.log_params({"lr": 0.1, "depth": 3})
    with pytest.raises(ConflictError) as changed:
        run.log_param("lr", 0.2)
    assert changed.value.code == "PARAM_IMMUTABLE"
    assert run.refresh().params == {"lr": "0.1", "depth": "3"}


def test_tags_can_be_changed_and_deleted(tracking: TrackingClient, unique: str) -> None:
    run = tracking.start_run(experiment=unique, tags={"team": "a"})
    assert tracking.set_tags(run.experiment_id, run.id, {"team": "b"}).tags["team"] == "b"
    tracking.delete_tag(run.experiment_id, run.id, "team")
    assert "team" not in run.refresh().tags


def test_list_and_search_runs_follow_pages_and_filter(tracking: TrackingClient, unique: str) -> None:
    experiment = tracking.create_experiment(unique)
    for i in range(5):
        with tracking.start_run(experiment_id=experiment.id, parameters={"i": i}) as run:
            run.log_metric("auc", i / 10)
    assert len(list(tracking.iter_runs(experiment.id, limit=2))) == 5
    found = tracking.iter_search_runs(
        [experiment.id], filter="metrics.auc > 0.15", order_by=["metrics.auc DESC"], max_results=2
    )
    assert [r.metrics["auc"] for r in found] == [0.4, 0.3, 0.2]
    page = tracking.search_runs([experiment.id], max_results=2)
    assert len(page.items) == 2 and page.next_page_token


def test_best_run_compare_and_histories(tracking: TrackingClient, unique: str) -> None:
    runs = []
    for depth, aucs in ((4, [0.7, 0.8]), (8, [0.75, 0.9])):
        with tracking.start_run(experiment=unique, parameters={"depth": depth, "seed": 1}) as run:
            for step, auc in enumerate(aucs):
                run.log_metric("auc", auc, step=step)
        runs.append(run)
    experiment_id = runs[0].experiment_id
    assert tracking.best_run(experiment_id, "auc").id == runs[1].id
    assert tracking.best_run(experiment_id, "auc", mode="min").id == runs[0].id
    comparison = tracking.compare_runs([r.id for r in runs])
    assert comparison.differing_params == ["depth"] and comparison.differing_metrics == ["auc"]
    assert comparison.params["depth"] == {runs[0].id: "4", runs[1].id: "8"}
    histories = tracking.metric_histories([r.id for r in runs], "auc")
    assert [p.value for p in histories[runs[1].id]] == [0.75, 0.9]


def test_delete_and_restore_a_run(tracking: TrackingClient, unique: str) -> None:
    run = tracking.start_run(experiment=unique)
    tracking.delete_run(run.experiment_id, run.id)
    assert list(tracking.iter_runs(run.experiment_id)) == []
    assert tracking.restore_run(run.experiment_id, run.id).lifecycle_stage == "active"


def test_unknown_runs_are_not_found(tracking: TrackingClient, unique: str) -> None:
    experiment = tracking.create_experiment(unique)
    with pytest.raises(NotFoundError) as missing:
        tracking.get_run(experiment.id, "0" * 32)
    assert missing.value.code == "RUN_NOT_FOUND"


def test_file_artifact_streams_both_ways_with_progress(
    tracking: TrackingClient, unique: str, tmp_path: Path
) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "model.onnx").write_bytes(payload)
    run = tracking.start_run(experiment=unique)
    sent: list[tuple[int, int | None]] = []
    [uploaded] = run.log_artifact(tmp_path / "model.onnx", progress=lambda d, t: sent.append((d, t)))
    assert (uploaded.path, uploaded.sha256) == ("model.onnx", hashlib.sha256(payload).hexdigest())
    assert sent[-1] == (len(payload), len(payload))
    received: list[tuple[int, int | None]] = []
    out = tmp_path / "out"
    out.mkdir()
    target = tracking.download_artifact(
        run.experiment_id, run.id, out, path="model.onnx", progress=lambda d, t: received.append((d, t))
    )
    assert target == out / "model.onnx" and target.read_bytes() == payload
    assert received[-1] == (len(payload), len(payload))
    assert not list(out.glob("*.part"))


def test_directory_artifacts_round_trip(tracking: TrackingClient, unique: str, tmp_path: Path) -> None:
    saved = tmp_path / "saved_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "data").write_bytes(b"weights" * 1000)
    run = tracking.start_run(experiment=unique)
    uploaded = tracking.upload_artifact(run.experiment_id, run.id, saved, artifact_path="model")
    assert [u.path for u in uploaded] == ["model/saved_model.pb", "model/variables/data"]
    top = tracking.list_artifacts(run.experiment_id, run.id)
    assert [(a.path, a.is_dir) for a in top] == [("model", True)]
    every = tracking.list_artifacts(run.experiment_id, run.id, "model", recursive=True)
    assert [(a.path, a.file_size) for a in every] == [
        ("model/saved_model.pb", 5),
        ("model/variables/data", 7000),
    ]
    folder = tracking.download_artifact(run.experiment_id, run.id, tmp_path / "copy", path="model")
    assert (folder / "variables" / "data").read_bytes() == b"weights" * 1000
    everything = tracking.download_artifact(run.experiment_id, run.id, tmp_path / "all")
    assert (everything / "model" / "saved_model.pb").read_bytes() == b"graph"


def test_missing_artifacts_are_not_found(tracking: TrackingClient, unique: str, tmp_path: Path) -> None:
    run = tracking.start_run(experiment=unique)
    with pytest.raises(NotFoundError) as missing:
        tracking.download_artifact(run.experiment_id, run.id, tmp_path, path="nope/model.pkl")
    assert missing.value.code == "ARTIFACT_NOT_FOUND"


def test_mlops_client_reaches_tracking(tracking_url: str) -> None:
    with MlopsClient(tracking_url=tracking_url) as mlops:
        assert mlops.tracking.get_experiment("0").name == "Default"


class ScriptedServer:
    """A real socket server: answers 503 to the first `failures` requests, then `answer(method, body)`."""

    def __init__(self, failures: int, answer: Callable[[str, bytes], dict[str, Any]]):
        self.failures, self.answer = failures, answer
        self.requests: list[tuple[str, bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._reply(conn)

    def _reply(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        method = head.split(b" ", 1)[0].decode()
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append((method, body))
        if len(self.requests) > self.failures:
            status, payload = b"200 OK", json.dumps(self.answer(method, body)).encode()
        else:
            status, payload = b"503 Service Unavailable", b'{"error": {"code": "BUSY", "message": "busy"}}'
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close"
            b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(failures: int, answer: Callable[[str, bytes], dict[str, Any]]) -> ScriptedServer:
        servers.append(ScriptedServer(failures, answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_artifact_uploads_are_retried_with_the_whole_file(
    scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    payload = os.urandom(200_000)
    (tmp_path / "model.bin").write_bytes(payload)
    server = scripted(2, lambda _m, body: {"path": "model.bin", "size": len(body), "sha256": _sha(body)})
    with TrackingClient(server.url) as client:
        [uploaded] = client.upload_artifact("1", "r" * 32, tmp_path / "model.bin")
    assert uploaded.sha256 == _sha(payload)
    assert [(method, len(body)) for method, body in server.requests] == [("PUT", len(payload))] * 3


def test_metric_logging_is_never_retried(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(2, lambda _m, _b: {"run_id": "r", "logged": 1})
    with TrackingClient(server.url) as client, pytest.raises(ServerError) as failed:
        client.log_metric("1", "r" * 32, "auc", 0.9)
    assert failed.value.status == 503 and len(server.requests) == 1


def test_reads_are_retried_through_503s(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(2, lambda _m, _b: {"key": "auc", "items": [], "next_page_token": None})
    with TrackingClient(server.url) as client:
        assert client.metric_history("1", "r" * 32, "auc") == []
    assert len(server.requests) == 3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
