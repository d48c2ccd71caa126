"""Real task callables the orchestrator's tests run (referenced as ``orchestrator_task_fixtures:<name>``)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pipeline_orchestrator.worker.context import TaskContext


def noop() -> None:
    return None


def add(a: float, b: float) -> dict[str, float]:
    return {"sum": a + b}


def square(x: float) -> float:
    return x * x


def echo(**inputs: Any) -> dict[str, Any]:
    return dict(inputs)


def boom(message: str = "kaboom") -> None:
    raise ValueError(message)


def exits(code: int = 3) -> None:
    sys.exit(code)


def chatty() -> dict[str, bool]:
    print("to stdout")
    print("to stderr", file=sys.stderr)
    logging.getLogger("user.code").info("an info record")
    return {"ok": True}


def with_context(context: TaskContext, tag: str = "") -> dict[str, Any]:
    context.log.info("running %s attempt %d %s", context.task, context.attempt, tag)
    return {
        "run_id": context.run_id,
        "pipeline": context.pipeline,
        "task": context.task,
        "attempt": context.attempt,
    }


def writes_artifact(context: TaskContext, text: str = "hello") -> dict[str, Any]:
    (context.artifacts_dir / "model.txt").write_text(text)
    (context.artifacts_dir / "sub").mkdir()
    (context.artifacts_dir / "sub" / "metrics.json").write_text('{"a": 1}')
    saved = context.save_artifact("notes/readme.md", b"# notes")
    return {"saved": saved, "artifacts": {"model.txt": "mine"}}


def reads_artifact(uri: str, context: TaskContext) -> dict[str, Any]:
    with context.open_artifact(uri) as fh:
        data = fh.read()
    return {"text": data.decode(), "path_exists": context.artifact_path(uri).is_file()}


def returns_unserialisable() -> dict[str, Any]:
    return {"fine": 1, "nested": {"bad": object()}}


def returns_plain_values() -> dict[str, Any]:
    return {"when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "items": (1, 2)}


def returns_scalar() -> int:
    return 42


def sleeps(seconds: float, context: TaskContext) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not context.cancelled.is_set():
        time.sleep(0.01)
    return {"stopped_early": context.cancelled.is_set()}


def prints_from_thread() -> None:
    thread = threading.Thread(target=lambda: print("from a thread the task started"))
    thread.start()
    thread.join()


def objective(params: dict[str, Any], offset: float = 0.0) -> float:
    return -((params["x"] - 2.0) ** 2) + offset


def objective_dict(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    accuracy = 1.0 - abs(params["x"] - 0.5)
    if context.tracking_run is not None:
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            context.tracking_run.log_metrics({"loss": loss}, step=step)
    return {"accuracy": accuracy, "loss": 0.3, "note": "fine"}


def objective_nan(params: dict[str, Any]) -> float:
    return float("nan")


def objective_missing_metric(params: dict[str, Any]) -> dict[str, float]:
    return {"other": 1.0}


def write_file(path: str, text: str) -> dict[str, str]:
    Path(path).write_text(text)
    return {"path": path}


class Namespace:
    class Inner:
        @staticmethod
        def method(value: int) -> dict[str, int]:
            return {"value": value}


def getenv(name: str) -> dict[str, str | None]:
    import os

    return {"value": os.environ.get(name)}


def serve_http(port: int) -> None:
    """A small real HTTP server for the http task tests: run in its own process."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-ID", "req-1")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/json":
                self._answer(200, b'{"hello": "world"}', "application/json")
            elif self.path == "/text":
                self._answer(200, b"plain words", "text/plain")
            elif self.path == "/big":
                self._answer(200, b"x" * (200 * 1024), "text/plain")
            elif self.path.startswith("/status/"):
                status = int(self.path.rsplit("/", 1)[1])
                self._answer(status, f"answered {status} on purpose".encode(), "text/plain")
            elif self.path == "/slow":
                time.sleep(3)
                self._answer(200, b"late", "text/plain")
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/json")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._answer(404, b"no such page", "text/plain")

        do_HEAD = do_GET

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            echo = {"method": "POST", "body": body, "x_token": self.headers.get("X-Token")}
            self._answer(201, json.dumps(echo).encode(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
