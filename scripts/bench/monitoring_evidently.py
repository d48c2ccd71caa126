"""Evidently's side of the monitoring benchmark; runs in Evidently's own venv (not the workspace's).

    <evidently-venv>/bin/python monitoring_evidently.py DATA_DIR OUT_JSON

Reads the arrays monitoring_bench.py wrote (ref_num.npy, cur_num.npy, ref_cat.npy, cur_cat.npy,
columns.json) and answers one JSON line per line on stdin: "ready" once loaded, then for each
"run" line one timed `Report([DataDriftPreset()])` (two `Dataset.from_pandas` calls, `run`,
`.dict()`: what a user does to get the answer; wall and process CPU seconds), so that the caller
can interleave its own runs under the same machine load. At end of input it writes the timings
and the per-column method, statistic, threshold and verdict of the last run to OUT_JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

started = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

IMPORT_S = time.perf_counter() - started


def frames(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, DataDefinition]:
    names = json.loads((data / "columns.json").read_text())
    num, cat = names["numeric"], names["categorical"]

    def frame(side: str) -> pd.DataFrame:
        x = np.load(data / f"{side}_num.npy")
        c = np.load(data / f"{side}_cat.npy")
        cols: dict[str, Any] = {n: x[:, i] for i, n in enumerate(num)}
        cols.update({n: c[:, i].astype(object) for i, n in enumerate(cat)})
        return pd.DataFrame(cols)

    return frame("ref"), frame("cur"), DataDefinition(numerical_columns=num, categorical_columns=cat)


def once(ref: pd.DataFrame, cur: pd.DataFrame, definition: DataDefinition) -> dict[str, Any]:
    current = Dataset.from_pandas(cur, data_definition=definition)
    reference = Dataset.from_pandas(ref, data_definition=definition)
    return Report([DataDriftPreset()]).run(current, reference).dict()


def columns(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-column ValueDrift results, and the dataset's DriftedColumnsCount."""
    out: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith("ValueDrift"):
            method, threshold, value = config["method"], float(config["threshold"]), float(metric["value"])
            # p-value tests drift below the threshold, distances at or above it
            drifted = value < threshold if "p_value" in method else value >= threshold
            out[config["column"]] = {
                "method": method,
                "statistic": value,
                "threshold": threshold,
                "drifted": drifted,
            }
        elif kind.endswith("DriftedColumnsCount"):
            dataset = {**metric["value"], "drift_share": config.get("drift_share")}
    return out, dataset


def reply(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    ref, cur, definition = frames(data)
    reply({"ready": True, "import_s": round(IMPORT_S, 3)})
    seconds: list[float] = []
    cpu: list[float] = []
    result: dict[str, Any] = {}
    for line in sys.stdin:  # one timed run per "run" line, so the caller can interleave its own
        if line.strip() != "run":
            break
        t0, c0 = time.perf_counter(), time.process_time()
        result = once(ref, cur, definition)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        reply({"wall_s": seconds[-1], "cpu_s": cpu[-1]})
    per_column, dataset = columns(result)
    from importlib.metadata import version

    out.write_text(
        json.dumps(
            {
                "evidently": version("evidently"),
                "pandas": pd.__version__,
                "numpy": np.__version__,
                "python": sys.version.split()[0],
                "import_s": round(IMPORT_S, 3),
                "run_s": [round(s, 4) for s in seconds],
                "cpu_s": [round(s, 4) for s in cpu],
                "columns": per_column,
                "dataset": dataset,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
