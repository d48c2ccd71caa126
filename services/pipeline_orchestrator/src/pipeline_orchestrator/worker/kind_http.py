"""``http`` tasks: one request; the answer's status, body and a few headers become the outputs.

Outputs: ``{"status_code", "headers": {a few}, "json": ...}`` when the answer is JSON, else
``"text"`` (its first 64 KiB). A status outside ``expect_status`` (default: any 2xx) fails the
task with exit status 1, the status and an excerpt of the body. The timeout
(``payload.timeout_seconds``, default 60 s) applies to connecting and to each read; redirects are
followed.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline_orchestrator.worker.context import TaskContext, TaskFailed
from pipeline_orchestrator.worker.runner import EXIT_TIMED_OUT

DEFAULT_TIMEOUT = 60.0
TEXT_LIMIT = 64 * 1024
JSON_LIMIT = 16 * 1024 * 1024
KEPT_HEADERS = ("content-type", "content-length", "location", "etag", "last-modified", "x-request-id")


def run_http(ctx: TaskContext) -> dict[str, Any]:
    import httpx

    spec = ctx.payload.spec
    method = str(spec.get("method") or "GET").upper()
    url = str(spec.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise TaskFailed(f"url must be an http(s) URL, not {url!r}")
    timeout = ctx.payload.timeout_seconds or DEFAULT_TIMEOUT
    body = spec.get("body")
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream(
                method,
                url,
                headers={k: str(v) for k, v in (spec.get("headers") or {}).items()},
                json=body if body is not None else None,
            ) as response,
        ):
            content, complete = _read(response)
    except httpx.TimeoutException as exc:
        if ctx.payload.timeout_seconds:
            raise TaskFailed(
                f"timed out after {timeout:g}s: {method} {url}", exit_status=EXIT_TIMED_OUT
            ) from exc
        raise TaskFailed(f"{method} {url}: no answer within {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise TaskFailed(f"{method} {url} failed: {exc!r}") from None
    status = response.status_code
    expected = spec.get("expect_status")
    if (status not in expected) if expected else not 200 <= status < 300:
        excerpt = content[:2000].decode(errors="replace")
        raise TaskFailed(
            f"{method} {url} answered {status}, expected {expected or '2xx'}: {excerpt}",
            outputs={"status_code": status},
        )
    outputs: dict[str, Any] = {
        "status_code": status,
        "headers": {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers},
    }
    if complete and "json" in response.headers.get("content-type", "") and content:
        try:
            outputs["json"] = orjson.loads(content)
            return outputs
        except orjson.JSONDecodeError:
            pass
    outputs["text"] = content[:TEXT_LIMIT].decode(errors="replace")
    return outputs


def _read(response: Any) -> tuple[bytes, bool]:
    """The body up to JSON_LIMIT bytes, and whether that is all of it."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > JSON_LIMIT:
            return b"".join(chunks), False
    return b"".join(chunks), True
