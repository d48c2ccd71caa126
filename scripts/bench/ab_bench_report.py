"""The A/B testing benchmark's report: one row per target (`headline`) and the markdown and JSON
files written from the figures `ab_bench.py` measured (`write`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchkit import cal, fmt, verdict

RESULTS = Path(__file__).resolve().parent / "results"

TARGET_ROUTE_P99_MS = 2.0
TARGET_ROUTES_PER_S = 3000.0
TARGET_EVAL_US = 20.0
TARGET_EVENTS_PER_S = 50_000.0
TARGET_ANALYSIS_MS = 100.0
ANALYSIS_TARGET_EVENTS = 10_000_000


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what was measured, against what."""
    sc = results["scenarios"]
    rows = []
    lat = sc.get("route_latency")
    if lat:
        rows.append(
            {
                "scenario": "route",
                "target": "route p99 over HTTP (loopback, one keep-alive httpx connection)",
                "measured": f"p99 {lat['p99_ms']} ms (p50 {lat['p50_ms']}, mean {lat['mean_ms']})",
                "goal": f"< {TARGET_ROUTE_P99_MS:g} ms",
                "met": lat["p99_ms"] < TARGET_ROUTE_P99_MS,
                "fig": lat,
            }
        )
    tp = sc.get("route_throughput")
    if tp:
        best = tp["lean"]
        rows.append(
            {
                "scenario": "route",
                "target": f"routes/s, one worker ({best['connections']} keep-alive connections)",
                "measured": f"{best['routes_per_s']:,.0f}/s, {best['errors']} errors "
                f"(service at {best['server_cpu_share']:.0%} of a core)",
                "goal": f">= {TARGET_ROUTES_PER_S:,.0f}/s",
                "met": best["routes_per_s"] >= TARGET_ROUTES_PER_S and not best["errors"],
                "fig": best,
            }
        )
    ev = sc.get("local_evaluation")
    if ev:
        for case in ev["cases"]:
            rows.append(
                {
                    "scenario": "eval",
                    "target": f"local evaluation: `{case['call']}`",
                    "measured": f"{case['us_per_call_median']} µs/call (best {case['us_per_call_best']})",
                    "goal": f"< {TARGET_EVAL_US:g} µs",
                    "met": case["us_per_call_median"] < TARGET_EVAL_US,
                    "fig": case,
                }
            )
    for key, label in (("ingest_sequential", "sequential"), ("ingest_concurrent", "concurrent")):
        fig = sc.get(key)
        if fig:
            rows.append(
                {
                    "scenario": "ingest",
                    "target": f"event ingestion, {label} "
                    f"({fig['clients']} client{'s' * (fig['clients'] > 1)}, "
                    f"batches of {fig['batch_size']:,})",
                    "measured": f"{fig['events_per_s']:,.0f} events/s over {fig['accepted']:,} events",
                    "goal": f">= {TARGET_EVENTS_PER_S:,.0f}/s",
                    "met": fig["events_per_s"] >= TARGET_EVENTS_PER_S and not fig["errors"],
                    "fig": fig,
                }
            )
            if fig.get("folded_events_per_s") is not None:
                rows.append(
                    {
                        "scenario": "ingest",
                        "target": f"events in the statistics, {label}: accepted and folded "
                        "(first request until results include the last one)",
                        "measured": f"{fig['folded_events_per_s']:,.0f} events/s "
                        f"(results {fig['results_after_last_answer_s']} s after the last answer)",
                        "goal": f">= {TARGET_EVENTS_PER_S:,.0f}/s",
                        "met": fig["folded_events_per_s"] >= TARGET_EVENTS_PER_S and not fig["errors"],
                        "fig": fig,
                    }
                )
    an = sc.get("analysis")
    if an:
        full = an["results_at_full"]
        rows.append(
            {
                "scenario": "analysis",
                "target": f"analysis (`GET .../results`) of an experiment with {an['events']:,} events",
                "measured": f"p99 {full['p99_ms']} ms (p50 {full['p50_ms']})",
                "goal": f"< {TARGET_ANALYSIS_MS:g} ms at {ANALYSIS_TARGET_EVENTS:,} events",
                "met": full["p99_ms"] < TARGET_ANALYSIS_MS
                if an["events"] >= ANALYSIS_TARGET_EVENTS
                else None,
                "fig": full,
            }
        )
    return rows


def write(results: dict[str, Any], to_files: bool) -> str:
    cfg = results["config"]
    sc = results["scenarios"]
    source = results["source"]
    changed = " plus uncommitted changes to the service" if source["service_files_changed"] else ""
    lines = [
        "# A/B testing benchmark" + (" (--quick smoke run)" if cfg["quick"] else ""),
        "",
        f"{results['when']} on {results['machine']}, commit {str(source['commit'])[:10]}{changed}; cpu "
        f"calibration {results['cpu_calibration_s']} s before, "
        f"{results.get('cpu_calibration_after_s')} s after, "
        f"load average {results['loadavg_before'][0]} / {results.get('loadavg_after', ['?'])[0]} (a fixed "
        "pure-Python loop: larger means a slower or busier machine; every figure below has its own, "
        "before / after, with the 1-minute load average).",
        "",
        "One `python -m ab_testing` process (one uvicorn worker, its folder processes beside it, "
        + (
            "PostgreSQL on this machine, an empty database given by --database-url"
            if results["config"].get("storage") == "postgres"
            else "embedded SQLite in WAL mode under a temporary MLOPS_DATA_DIR"
        )
        + ", "
        + (
            "settings " + ", ".join(results["config"]["service_env"])
            if results["config"].get("service_env")
            else "default settings"
        )
        + "), driven over loopback HTTP by "
        "`scripts/bench/ab_bench.py` from another process on the same machine. Experiments have 3 "
        "variants (0.34 / 0.33 / 0.33), coverage 1 and 4 metrics (binary conversion, continuous revenue "
        "with a CUPED covariate, ratio ctr = clicks / views, continuous latency_ms as a guardrail).",
        "",
        "| target | measured | goal | verdict | cpu cal. before / after (load) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in headline(results):
        lines.append(
            f"| {row['target']} | {row['measured']} | {row['goal']} | {verdict(row['met'])} "
            f"| {cal(row['fig'])} |"
        )
    lines.append("")
    lat, raw = sc.get("route_latency"), sc.get("route_latency_lean")
    if lat:
        lines += [
            "## Routing",
            "",
            f"Sequential: {lat['requests']:,} `GET /api/route?user_id=...&experiment=...` one after the "
            "other, "
            f"each a new user, after {lat['warmup']:,} warm-up requests; every answer was compared with "
            f"`evaluate()` in the benchmark ({lat['answers_differing_from_local_evaluate']} differed, "
            f"{lat['errors']} errors).",
            "",
            "| client | n | mean ms | p50 ms | p90 ms | p99 ms | max ms | cpu cal. |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for fig in (lat, raw):
            if fig:
                lines.append(
                    f"| {fig['client']} | {fig['requests']:,} | {fig['mean_ms']} | {fig['p50_ms']} | "
                    f"{fig['p90_ms']} | {fig['p99_ms']} | {fig['max_ms']} | {cal(fig)} |"
                )
        lines.append("")
    tp = sc.get("route_throughput")
    if tp:
        lines += [
            f"Throughput: {tp['lean']['connections']} keep-alive connections routing new users for "
            f"{cfg['duration_s']:g} s each. *service CPU* is the service process's CPU time over the "
            "window (1.0 = one core); *CPU µs / route* the service's CPU per answered route.",
            "",
            "| client | connections | routes | routes/s | errors | service CPU | service CPU µs / route "
            "| client CPU | cpu cal. |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for fig in tp.values():
            lines.append(
                f"| {fig['client']} | {fig['connections']} | {fig['routes']:,} | "
                f"{fig['routes_per_s']:,.0f} | "
                f"{fig['errors']} | {fig['server_cpu_share']:.2f} | {fig['server_cpu_us_per_route']:,.0f} | "
                f"{fig['client_cpu_share']:.2f} | {cal(fig)} |"
            )
        lean = tp["lean"]
        others = [f for k, f in tp.items() if k != "lean" and f["routes"]]
        if others:
            lines += [
                "",
                "The target row uses the lean client. Per route, the httpx clients used "
                + ", ".join(
                    f"{f['client_cpu_share'] * f['duration_s'] / f['routes'] * 1e6:,.0f} µs of client CPU "
                    f"({f['client']})"
                    for f in others
                )
                + " against "
                + f"{lean['client_cpu_share'] * lean['duration_s'] / max(lean['routes'], 1) * 1e6:,.0f}"
                " µs for the lean client: on a machine with few cores, shared by client and service, they "
                "measure the client more than the service.",
            ]
        lines.append("")
    ev = sc.get("local_evaluation")
    if ev:
        lines += [
            "## Local evaluation",
            "",
            f"`mlops_client.ab_routing` in the benchmark process, the definition from "
            f"`GET /api/experiments/{{e}}/definition` ({ev['variants']} variants, no namespace, no "
            f"overrides); {ev['calls']:,} distinct users per pass, {ev['repeats']} passes (median and best). "
            f"The loop alone costs {ev['loop_overhead_us']} µs per user (included).",
            "",
            "| call | µs / call (median) | best | calls/s | cpu cal. |",
            "| --- | --- | --- | --- | --- |",
        ]
        for case in ev["cases"]:
            lines.append(
                f"| `{case['call']}` | {case['us_per_call_median']} | {case['us_per_call_best']} | "
                f"{case['calls_per_s_median']:,} | {cal(case)} |"
            )
        if ev.get("local_router_error"):
            lines.append(f"\nLocalRouter not measured: {ev['local_router_error']}")
        lines.append("")
    ing = [(k, sc[k]) for k in ("ingest_sequential", "ingest_concurrent") if sc.get(k)]
    if ing:
        first = ing[0][1]
        mix = ", ".join(f"{k} {v:.0%}" for k, v in first["event_mix"].items())
        lines += [
            "## Event ingestion",
            "",
            f'`POST /api/events {{"events": [...]}}`: unique event ids, no variant (the service assigns), '
            f"users drawn uniformly from {first['users']:,}; mix: {mix}. Each run goes into its own "
            "experiment; the JSON bodies were encoded before the clock started. events/s = accepted events / "
            "wall time from the first request to the last answer (an answer means the events are durable, "
            "de-duplicated and assigned). The service's folder processes fold them into the users' "
            "aggregates and the variants' sufficient statistics meanwhile; *events/s into the statistics* = "
            "accepted events / time from the first request until `GET .../results` (each call folds what is "
            "pending for up to 5 s first) answered with no event pending. *service CPU*: the service "
            "process; *folder CPU*: its folder processes.",
            "",
            "| run | clients | events | batches | wall s | events/s | events/s first / last tenth "
            "| batch p50 ms | batch p99 ms | rejected, retried | failed | service CPU "
            "| service CPU µs / event | folder CPU µs / event | events/s into the statistics "
            "| statistics check | cpu cal. |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- | --- |",
        ]
        for key, fig in ing:
            check = fig["statistics_check"]
            lat_ = fig["batch_latency"] or {}
            trend = fig.get("trend") or {}
            verdict_ = (
                "identical" if check["ok"] else "**" + str(check["differences"]) + " differences**"
            ) + f" ({check['fields_compared']:,} fields)"
            lines.append(
                f"| {key.removeprefix('ingest_')} | {fig['clients']} | {fig['accepted']:,} | "
                f"{fig['batches']:,} | {fig['wall_s']:,.1f} | {fig['events_per_s']:,.0f} | "
                f"{fmt(trend.get('first_tenth_events_per_s'), 0)} / "
                f"{fmt(trend.get('last_tenth_events_per_s'), 0)} | "
                f"{fmt(lat_.get('p50_ms'), 0)} | {fmt(lat_.get('p99_ms'), 0)} | "
                f"{fig['rejected_attempts']} | {fig['errors']} | {fmt(fig['server_cpu_share'])} | "
                f"{fmt(fig['server_cpu_us_per_event'], 0)} | {fmt(fig.get('folder_cpu_us_per_event'), 0)} | "
                f"{fmt(fig.get('folded_events_per_s'), 0)} | {verdict_} | {cal(fig)} |"
            )
        lines += [
            "",
            "*rejected, retried*: answers other than 200 (a 503 or 504 is sent again after 0.5, 1, 2, 4 s, "
            "as the client does; events are idempotent on their ids); *failed*: batches never accepted. "
            "*statistics check*: every field of the service's `metric_stats` rows (n, sums, squares, CUPED "
            "cross-products, ratio products) and `exposure_counts`, read from its SQLite file, against an "
            "independent numpy reduction of the events of the accepted batches (relative tolerance 1e-9). "
            "Re-sending the first batch answered "
            f"{first['resent_first_batch']['answer']} in {first['resent_first_batch']['seconds']} s.",
            "",
        ]
        for key, fig in ing:
            if fig["failures"]:
                lines += [f"Rejections in the {key.removeprefix('ingest_')} run:", ""]
                lines += [f"    {failure}" for failure in fig["failures"][:3]]
                lines.append("")
    an = sc.get("analysis")
    if an:
        s, f = an["results_at_sample"], an["results_at_full"]
        lines += [
            "## Analysis",
            "",
            f"Experiment `{an['experiment']}`: {an['events']:,} events over {an['users']:,} users "
            f"({an['comparisons']} comparisons: 4 metrics x 2 treatments against the control). How the "
            f"events got there: {an['how']}. Statistics check of the HTTP-ingested sample: "
            f"{'identical' if an['sample_statistics_check']['ok'] else 'differences'}; results report "
            f"exposures {an['results_exposures']} "
            f"({'as expected' if an['results_exposures_ok'] else '**not as expected**'}).",
            "",
            "| experiment | events | calls | mean ms | p50 ms | p90 ms | p99 ms | max ms | answer bytes "
            "| cpu cal. |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        rows = [(f"{an['experiment']} (sample only)", s)]
        seq = sc.get("ingest_sequential")
        if seq and seq.get("results"):
            rows.append((seq["experiment"], seq["results"]))
        rows.append((an["experiment"], f))
        for name, fig in rows:
            lines.append(
                f"| {name} | {fig['events']:,} | {fig['calls']} | {fig['mean_ms']} | {fig['p50_ms']} | "
                f"{fig['p90_ms']} | {fig['p99_ms']} | {fig['max_ms']} | {fig['answer_bytes']:,} "
                f"| {cal(fig)} |"
            )
        lines += [
            "",
            "Analysis reads one `metric_stats` row per variant x metric and the exposure counts, so its time "
            "should not change with the number of events; the rows above are the check.",
            "",
        ]
    profiles = results.get("profiles")
    if profiles:
        lines += [
            "## Where the time goes",
            "",
            "py-spy on the service process during a second, profiled run of each scenario that missed its "
            "target (after the measured runs); shares of the samples in which a thread was busy. Inclusive "
            "frames of the platform's own code (ab_testing, mlops_kit, mlops_client) by function, then by "
            "line.",
            "",
        ]
        for key, prof in profiles.items():
            if not prof.get("samples"):
                lines.append(f"- **{key}**: no samples ({prof.get('error', '')})")
                continue
            areas = ", ".join(f"{k} {v['percent']}%" for k, v in prof["areas"].items())
            lines.append(
                f"- **{key}** ({prof['samples']} samples at {prof['rate_hz']} Hz; while profiled: "
                f"{prof['figures_while_profiled']}): {areas}."
            )
            lines += [f"  - {x['percent']}% `{x['frame']}`" for x in prof["own_code_functions"][:18]]
            lines.append(
                "  - by line: "
                + "; ".join(f"`{x['frame']}` {x['percent']}%" for x in prof["own_code_lines"][:8])
            )
            lines.append(
                "  - hottest leaf frames: "
                + "; ".join(f"`{x['frame']}` {x['percent']}%" for x in prof["self"][:6])
            )
        lines.append("")
    logged = results.get("server_errors") or {}
    if logged.get("error_lines"):
        lines += [f"{logged['error_lines']} ERROR lines in the service log; the first:", ""]
        lines += [f"    {e}" for e in logged["first"]]
        lines.append("")
    markdown = "\n".join(lines)
    if to_files:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = "ab_testing_postgres" if results["config"].get("storage") == "postgres" else "ab_testing"
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (RESULTS / f"{name}.md").write_text(markdown)
    return markdown
