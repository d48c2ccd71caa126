"""Point-in-time retrieval benchmark: 100,000 entity rows against 1,000,000 feature rows.

A fresh PostgreSQL database (the local server, MLOPS_TEST_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/postgres) and a real feature store process
(`python -m feature_store`, offline store in that database, SQLite online store) on a free
loopback port. Everything goes through the HTTP API, i.e. the service's own code path:

1. entity `user` and feature set `bench` (f0..f4 float, f5..f9 int, no TTL);
2. ingestion: --entities x --timestamps rows (default 10,000 x 100 = 1,000,000), generated from a
   seed, posted as Parquet (`application/octet-stream?format=parquet`) in --chunk-row requests
   (validation, COPY into offline_rows, statistics); rows per second;
3. retrieval: --entity-rows entity rows (random entities, 2% of them unknown, random times from
   one day before the first row to one day after the last), `POST /api/features/historical`,
   JSON answer, --runs times (wall time until the whole answer has arrived), then once with
   `Accept: application/vnd.apache.parquet`;
4. verification: --verify answer rows checked against a brute-force scan of the generated data.

Writes scripts/bench/results/feature_historical.json and feature_historical.md.

    uv run python scripts/bench/feature_historical_bench.py [--entities 10000] [--timestamps 100] \\
        [--entity-rows 100000] [--runs 3] [--chunk-rows 100000] [--verify 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from mlops_kit.testing import ServiceProcess
from mlops_kit.testing.backends import fresh_postgres_database

RESULTS = Path(__file__).resolve().parent / "results"
T0 = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z, µs
SEC = 1_000_000
SPAN = 100 * 86_400 * SEC  # the rows' event times spread over 100 days
FLOATS, INTS = [f"f{i}" for i in range(5)], [f"f{i}" for i in range(5, 10)]


def entity(i: int) -> str:
    return f"e{i:05d}"


def generate(entities: int, timestamps: int, seed: int) -> dict[str, list[tuple[int, list[Any]]]]:
    """Per entity, its rows sorted by event time: (event_ts µs, [f0..f9])."""
    rng = random.Random(seed)
    data: dict[str, list[tuple[int, list[Any]]]] = {}
    for i in range(entities):
        times = sorted(rng.sample(range(0, SPAN // SEC), timestamps))
        data[entity(i)] = [
            (
                T0 + t * SEC,
                [round(rng.uniform(-100, 100), 6) for _ in FLOATS]
                + [rng.randint(-(10**6), 10**6) for _ in INTS],
            )
            for t in times
        ]
    return data


def parquet_chunks(data: dict[str, list[tuple[int, list[Any]]]], chunk_rows: int) -> list[bytes]:
    flat = [(key, ts, values) for key, rows in data.items() for ts, values in rows]
    random.Random(1).shuffle(flat)  # arrival order unrelated to event time
    out = []
    for start in range(0, len(flat), chunk_rows):
        part = flat[start : start + chunk_rows]
        columns: dict[str, Any] = {
            "user_id": [k for k, _, _ in part],
            "event_timestamp": pa.array([ts for _, ts, _ in part], pa.timestamp("us", tz="UTC")),
        }
        for j, name in enumerate(FLOATS + INTS):
            columns[name] = pa.array(
                [v[j] for _, _, v in part], pa.float64() if name in FLOATS else pa.int64()
            )
        sink = io.BytesIO()
        pq.write_table(pa.table(columns), sink)
        out.append(sink.getvalue())
    return out


def iso(us: int) -> str:
    return (
        datetime.fromtimestamp(us // SEC, UTC)
        .replace(microsecond=us % SEC)
        .isoformat()
        .replace("+00:00", "Z")
    )


def entity_rows(entities: int, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        key = entity(rng.randrange(entities)) if rng.random() > 0.02 else f"missing{rng.randrange(100)}"
        ts = T0 - 86_400 * SEC + rng.randrange(SPAN + 2 * 86_400 * SEC)
        rows.append({"user_id": key, "event_timestamp": iso(ts), "_ts": ts})
    return rows


def brute_force(data: dict[str, list[tuple[int, list[Any]]]], key: str, ts: int) -> list[Any]:
    best: tuple[int, list[Any]] | None = None
    for event_ts, values in data.get(key, []):
        if event_ts <= ts and (best is None or event_ts > best[0]):
            best = (event_ts, values)
    return best[1] if best else [None] * 10


def check(client: httpx.Client, r: httpx.Response) -> httpx.Response:
    if r.status_code >= 300:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}")
    return r


def run(args: argparse.Namespace) -> dict[str, Any]:
    t = time.perf_counter()
    data = generate(args.entities, args.timestamps, args.seed)
    chunks = parquet_chunks(data, args.chunk_rows)
    total_rows = args.entities * args.timestamps
    print(f"generated {total_rows} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    with fresh_postgres_database("fhbench") as url, tempfile.TemporaryDirectory() as tmp:
        env = {
            "MLOPS_FEATURE_STORE_DATA_DIR": tmp,
            "MLOPS_FEATURE_STORE_DATABASE_URL": url,
            "MLOPS_FEATURE_STORE_REQUEST_TIMEOUT_SECONDS": "600",
            "MLOPS_LOG_JSON": "false",
        }
        with (
            ServiceProcess("feature_store", env=env, tmp=Path(tmp)) as svc,
            httpx.Client(base_url=svc.url, timeout=600) as client,
        ):
            check(client, client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}))
            features = [{"name": n, "type": "float"} for n in FLOATS] + [
                {"name": n, "type": "int"} for n in INTS
            ]
            check(
                client,
                client.post(
                    "/api/feature-sets", json={"name": "bench", "entity": "user", "features": features}
                ),
            )
            ingest_s = []
            for i, chunk in enumerate(chunks):
                t = time.perf_counter()
                check(
                    client,
                    client.post(
                        "/api/feature-sets/bench/rows?format=parquet",
                        content=chunk,
                        headers={"content-type": "application/octet-stream"},
                    ),
                )
                ingest_s.append(time.perf_counter() - t)
                print(f"ingest chunk {i}: {ingest_s[-1]:.2f} s", file=sys.stderr)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE offline_rows")
                stored = conn.execute("SELECT count(*) FROM offline_rows").fetchone()[0]  # type: ignore[index]
                pg_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            assert stored == total_rows, stored
            rows = entity_rows(args.entities, args.entity_rows, args.seed + 1)
            body = {
                "entity_rows": [{k: v for k, v in r.items() if k != "_ts"} for r in rows],
                "features": ["bench:*"],
            }
            payload = json.dumps(body).encode()
            times, answer = [], None
            for i in range(args.runs):
                t = time.perf_counter()
                r = check(
                    client,
                    client.post(
                        "/api/features/historical",
                        content=payload,
                        headers={"content-type": "application/json"},
                    ),
                )
                times.append(time.perf_counter() - t)
                answer = r
                print(f"retrieval run {i}: {times[-1]:.2f} s, {len(r.content) / 1e6:.1f} MB", file=sys.stderr)
            t = time.perf_counter()
            pr = check(
                client,
                client.post(
                    "/api/features/historical",
                    content=payload,
                    headers={"content-type": "application/json", "accept": "application/vnd.apache.parquet"},
                ),
            )
            parquet_s = time.perf_counter() - t
            assert answer is not None
            result = answer.json()
            table = pq.read_table(io.BytesIO(pr.content))
    mismatches, matched = verify(data, rows, result, table, args.verify, args.seed)
    best = min(times)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": pg_version},
        "ingestion": {
            "rows": total_rows,
            "requests": len(chunks),
            "rows_per_request": args.chunk_rows,
            "format": "Parquet over HTTP (validation, COPY, statistics)",
            "seconds": round(sum(ingest_s), 2),
            "rows_per_second": round(total_rows / sum(ingest_s)),
        },
        "retrieval": {
            "entity_rows": args.entity_rows,
            "feature_rows": total_rows,
            "features": 10,
            "json_seconds": [round(x, 3) for x in times],
            "json_best_seconds": round(best, 3),
            "json_median_seconds": round(statistics.median(times), 3),
            "json_answer_mb": round(len(answer.content) / 1e6, 1),
            "parquet_seconds": round(parquet_s, 3),
            "parquet_answer_mb": round(len(pr.content) / 1e6, 1),
            "target_seconds": 10,
            "target_met": statistics.median(times) < 10,
        },
        "verification": {"rows_checked": args.verify, "rows_with_a_match": matched, "mismatches": mismatches},
    }


def verify(
    data: dict[str, list[tuple[int, list[Any]]]],
    rows: list[dict[str, Any]],
    result: dict[str, Any],
    table: pa.Table,
    n: int,
    seed: int,
) -> tuple[int, int]:
    columns = result["columns"]
    assert columns == ["user_id", "event_timestamp", *FLOATS, *INTS], columns
    assert len(result["rows"]) == len(rows) == table.num_rows
    parquet_rows = table.select(FLOATS + INTS).to_pylist()
    mismatches = matched = 0
    for i in random.Random(seed + 2).sample(range(len(rows)), min(n, len(rows))):
        want = brute_force(data, rows[i]["user_id"], rows[i]["_ts"])
        got = result["rows"][i]
        matched += want[0] is not None
        if got[0] != rows[i]["user_id"] or got[2:] != want or list(parquet_rows[i].values()) != want:
            mismatches += 1
            print(f"MISMATCH row {i}: {rows[i]} want {want} got {got[2:]}", file=sys.stderr)
    return mismatches, matched


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feature_historical.json").write_text(json.dumps(results, indent=2) + "\n")
    ing, ret, ver = results["ingestion"], results["retrieval"], results["verification"]
    lines = [
        (
            f"ingestion of {ing['rows']:,} rows "
            f"({ing['requests']} Parquet requests of {ing['rows_per_request']:,})",
            f"{ing['seconds']} s, {ing['rows_per_second']:,} rows/s",
        ),
        (
            f"retrieval, {ret['entity_rows']:,} entity rows x {ret['feature_rows']:,} feature rows, "
            "10 features, JSON",
            f"best {ret['json_best_seconds']} s, median {ret['json_median_seconds']} s "
            f"(runs: {ret['json_seconds']}), {ret['json_answer_mb']} MB",
        ),
        ("same, Parquet answer", f"{ret['parquet_seconds']} s, {ret['parquet_answer_mb']} MB"),
        (f"target (< {ret['target_seconds']} s)", "met" if ret["target_met"] else "NOT met"),
        (
            "brute-force check",
            f"{ver['rows_checked']} rows ({ver['rows_with_a_match']} with a match), "
            f"{ver['mismatches']} mismatches",
        ),
    ]
    table = "\n".join(f"| {a} | {b} |" for a, b in lines)
    md = f"""# Point-in-time retrieval benchmark

{results["when"]}, {results["machine"]["cpus"]} CPUs (shared), Python {results["machine"]["python"]},
PostgreSQL {results["machine"]["postgres"]}; one feature store process, everything over HTTP
(`scripts/bench/feature_historical_bench.py`).

| step | figure |
| --- | --- |
{table}
"""
    (RESULTS / "feature_historical.md").write_text(md)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--timestamps", type=int, default=100)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verify", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args()
    results = run(args)
    print(json.dumps(results, indent=2))
    if not args.no_write:
        write(results)


if __name__ == "__main__":
    main()
