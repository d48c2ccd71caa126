"""Run one attempt and report it to the orchestrator: the command of every Kubernetes Job.

    python -m pipeline_orchestrator.worker run --payload-env MLOPS_TASK_PAYLOAD
    python -m pipeline_orchestrator.worker run --payload-b64 <base64 of the payload JSON>

Exits 0 when the attempt succeeded, 1 otherwise (a timed-out or cancelled attempt ends the
process and its children at once: 124 for a timeout, 143 when the orchestrator said stop).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from pipeline_orchestrator.worker.remote import decode_payload, kill_descendants, run_remote

EXIT_TIMEOUT = 124
EXIT_STOPPED = 143


def _abandon(why: str) -> None:
    """The attempt timed out or was cancelled: end the task's processes and this one now."""
    logging.getLogger("mlops.pipeline_orchestrator.worker").warning("stopping: %s", why)
    kill_descendants(signal.SIGKILL)
    logging.shutdown()
    os._exit(EXIT_TIMEOUT if why == "timeout" else EXIT_STOPPED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_orchestrator.worker",
        description="Run one pipeline task attempt and report it to the orchestrator's worker API.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the attempt described by a payload")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--payload-b64", help="the TaskPayload as base64-encoded JSON")
    source.add_argument("--payload-env", metavar="VAR", help="read the base64 payload from this env variable")
    run.add_argument("--worker", help="the worker name reported to the orchestrator (default host:pid)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("MLOPS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.payload_env:
        text = os.environ.get(args.payload_env)
        if not text:
            parser.error(f"environment variable {args.payload_env} is not set")
    else:
        text = args.payload_b64
    try:
        payload = decode_payload(text)
    except ValueError as exc:
        parser.error(str(exc))
    if args.payload_env:
        os.environ.pop(args.payload_env, None)  # the task need not see it (it holds the attempt token)
    result = run_remote(payload, worker=args.worker, on_abandon=_abandon)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
