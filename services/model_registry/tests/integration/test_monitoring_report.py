"""The monitoring HTML report (issue 13) on SQLite and PostgreSQL: one self-contained page whose
verdicts are the drift answer's, performance over time equal to the core's, everything escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from model_registry.monitoring.html_report import num
from model_registry.monitoring.performance import compute_performance
from model_registry.monitoring.timeline import main_metric, performance_over_time
from registry_helpers import register

BASE = "/api/models/churn"
REF = f"{BASE}/versions/1/monitoring/reference"
REPORT = f"{BASE}/monitoring/report"
HOUR1 = {"version": "1", "start": "2026-01-01T01:00:00Z", "end": "2026-01-01T02:00:00Z"}
HOUR2 = {"version": "1", "start": "2026-01-01T02:00:00Z", "end": "2026-01-01T03:00:00Z"}


def _reference(n: int = 2000, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "f1": float(rng.normal(0.0, 1.0)),
            "f2": str(rng.choice(["a", "b", "c"])),
            "prediction": int(rng.integers(0, 2)),
        }
        for _ in range(n)
    ]


def _window(prefix: str, hour: int, shift: float, n: int = 400, seed: int = 2) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    shares = [0.7, 0.2, 0.1] if shift else None
    return [
        {
            "request_id": f"{prefix}-{i}",
            "version": "1",
            "timestamp": f"2026-01-01T{hour:02d}:{i * 60 // n:02d}:00Z",
            "features": {
                "f1": float(rng.normal(shift, 1.0)),
                "f2": str(rng.choice(["a", "b", "c"], p=shares)),
            },
            "prediction": int(rng.integers(0, 2)),
            "probability": float(rng.uniform()),
        }
        for i in range(n)
    ]


def _setup(client: TestClient) -> None:
    register(client, "churn", version="1", metrics={"accuracy": 0.5, "auc": 0.6})
    assert client.put(REF, json=_reference()).status_code == 200
    for rows in (_window("same", 1, 0.0, seed=3), _window("shift", 2, 1.0, seed=4)):
        assert client.post(f"{BASE}/predictions", json=rows).json()["accepted"] == len(rows)


class _Page(HTMLParser):
    """What the tests read from a page: each column's verdict, the dataset's, every link and tag."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.features: dict[str, str] = {}
        self.dataset: str | None = None
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if "data-feature" in found:
            self.features[str(found["data-feature"])] = str(found["data-verdict"])
        if found.get("id") == "dataset-verdict":
            self.dataset = found["data-verdict"]
        self.links += [str(v) for k, v in attrs if k in ("src", "href", "action", "xlink:href")]


def _report(client: TestClient, params: dict[str, Any]) -> str:
    response = client.get(REPORT, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    return response.text


def _verdict(feature: dict[str, Any]) -> str:
    if feature["status"] == "insufficient_data":
        return "insufficient data"
    return "drifted" if feature["drifted"] else "no drift"


def test_each_columns_verdict_is_the_drift_answers_and_a_shifted_window_is_drifted(
    client: TestClient,
) -> None:
    _setup(client)
    for params, dataset in ((HOUR1, "no drift"), (HOUR2, "drifted")):
        page = _Page(_report(client, params))
        answer = client.get(f"{BASE}/monitoring/drift", params=params).json()
        assert page.features == {f["feature"]: _verdict(f) for f in answer["features"]}
        assert set(page.features) == {"f1", "f2", "prediction"}
        assert page.dataset == dataset == ("drifted" if answer["dataset"]["drifted"] else "no drift")
    shifted = _report(client, HOUR2)
    moved = client.get(f"{BASE}/monitoring/drift", params=HOUR2).json()
    for feature in moved["features"]:
        assert num(feature["statistic"]) in shifted  # the statistic the verdict rests on is shown
    assert _Page(shifted).features["f1"] == "drifted" and _Page(shifted).features["f2"] == "drifted"
    assert shifted.count("<svg") == 3  # one distribution chart per column; no labels, no time chart


def test_the_page_loads_nothing_from_outside(client: TestClient) -> None:
    _setup(client)
    text = _report(client, {"version": "1"})
    page = _Page(text)
    assert "http://" not in text and "https://" not in text and "//" not in "".join(page.links)
    assert all(link.startswith("#") for link in page.links)  # in-page anchors only
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "<style>" in text and "<svg" in text


def test_performance_over_time_buckets_equal_the_core(client: TestClient) -> None:
    _setup(client)
    rows = _window("same", 1, 0.0, seed=3) + _window("shift", 2, 1.0, seed=4)
    rng = np.random.default_rng(7)
    labels = [
        int(r["prediction"]) if rng.uniform() < (0.9 if i < 400 else 0.6) else 1 - r["prediction"]
        for i, r in enumerate(rows)
    ]
    body = [{"request_id": r["request_id"], "label": y} for r, y in zip(rows, labels, strict=True)]
    assert client.post(f"{BASE}/labels", json=body).json()["labelled"] == 800
    text = _report(client, {"version": "1"})
    stamps = [datetime.fromisoformat(r["timestamp"]).astimezone(UTC) for r in rows]
    values = ([r["prediction"] for r in rows], labels, [r["probability"] for r in rows])
    overall = compute_performance(*values)
    metric = main_metric(overall, {"accuracy": 0.5, "auc": 0.6})
    buckets = performance_over_time(stamps, *values, overall, metric)
    assert metric == "accuracy" and len(buckets) == 12  # 800 rows over 2 h: round 10-minute buckets
    assert [b.start.minute for b in buckets] == [0, 10, 20, 30, 40, 50] * 2
    assert sum(b.n for b in buckets) == 800
    first, second = (np.mean([b.value or 0.0 for b in half]) for half in (buckets[:6], buckets[6:]))
    assert first > 0.8 > 0.7 > second  # the labels got worse in the second hour
    assert text.count('<tr class="bucket">') == 12
    for b in buckets:
        assert f'<td class="num">{b.n}</td><td class="num">{num(b.value)}</td>' in text
        assert f"{num(b.low)} &ndash; {num(b.high)}" in text
    assert "<polyline" in text and "<polygon" in text  # the line and its interval band
    assert "registered 0.5" in text  # the version's registered accuracy beside it
    assert f"{num(overall.metrics['roc_auc'].value)}" in text  # the whole window's table


def test_names_and_categories_are_escaped(client: TestClient) -> None:
    register(client, "churn", version="1")
    evil = "<script>alert(1)</script>"
    quote = '"><img src=x onerror=alert(2)>'
    reference = [{evil: float(i % 50), "f2": [evil, quote, "a"][i % 3]} for i in range(300)]
    assert client.put(REF, json=reference).status_code == 200
    rows = [
        {
            "request_id": f"r-{i}",
            "version": "1",
            "timestamp": "2026-01-01T01:00:00Z",
            "features": {evil: float(i % 50), "f2": [evil, quote, "a"][i % 2], quote: "x"},
            "prediction": i % 2,
        }
        for i in range(100)
    ]
    assert client.post(f"{BASE}/predictions", json=rows).json()["accepted"] == 100
    client.post(f"{BASE}/labels", json=[{"request_id": "r-1", "label": evil}])
    text = _report(client, {"version": "1"})
    page = _Page(text)
    assert "<script" not in text and "<img" not in text and "script" not in page.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in text
    assert set(page.features) == {evil, "f2"}  # the attribute holds the name, escaped, intact


def test_an_empty_window_renders_insufficient_data(client: TestClient) -> None:
    _setup(client)
    page_text = _report(client, {"version": "1", "last": "1h"})  # nothing logged in the last hour
    page = _Page(page_text)
    assert page.dataset == "insufficient data"
    assert set(page.features.values()) == {"insufficient data"}
    assert "Insufficient data: no labelled predictions in this window." in page_text
    labelled_nothing = _Page(_report(client, HOUR1))
    assert labelled_nothing.dataset == "no drift"


def test_report_errors_are_the_drift_answers(client: TestClient) -> None:
    register(client, "churn", version="1")
    missing = client.get(REPORT, params={"version": "1"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "REFERENCE_NOT_FOUND"
    bad = client.get(REPORT, params={"last": "soon"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_MONITORING_QUERY"
    assert client.get("/api/models/nope/monitoring/report").json()["error"]["code"] == "MODEL_NOT_FOUND"
