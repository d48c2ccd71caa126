"""The README runs top to bottom: every ```bash and ```python block of README.md, in order,
against the six services started as real processes on embedded storage (SQLite + files) on
free ports.

Each block runs with `bash -euo pipefail` (a python block: `python` on it) in one scratch
directory: files a block writes are there for the next, and so are the variables it exports;
`examples/` and `scripts/` are linked in; the `.venv` is first on PATH (what `uv run` gives);
the `MLOPS_*_URL` variables the clients and the CLI read point at the test's services, and the
README's `http://127.0.0.1:<port>` addresses are rewritten to them. Its curl commands use
`--fail-with-body`, so an HTTP error fails the block and shows the platform's error body.
A block is skipped only after a `<!-- not-tested: reason -->` line (`make run` itself, docker).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlops_kit.testing.process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SERVICES = {  # module: (README port, client URL variable)
    "model_registry": (8000, "MLOPS_MODEL_REGISTRY_URL"),
    "feature_store": (8002, "MLOPS_FEATURE_STORE_URL"),
    "experiment_tracking": (8003, "MLOPS_EXPERIMENT_TRACKING_URL"),
    "pipeline_orchestrator": (8004, "MLOPS_PIPELINE_ORCHESTRATOR_URL"),
    "ab_testing": (8090, "MLOPS_AB_TESTING_URL"),
    "model_serving": (8080, "MLOPS_MODEL_SERVING_URL"),
}
NOT_TESTED = re.compile(r"<!--\s*not-tested:\s*(?P<reason>.+?)\s*-->")
BLOCK_SECONDS = 120


@dataclass
class Block:
    line: int  # of the opening fence
    lang: str
    code: str
    skip_reason: str | None


def readme_blocks(text: str) -> list[Block]:
    """The ```bash and ```python blocks, in order. A python block that a paragraph calls "the whole
    Python example" of `examples/X.py` is run by the bash block that follows it (as that file)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lang = lines[i].strip().removeprefix("```")
        if lines[i].startswith("```") and lang in ("bash", "python"):
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            before = [ln for ln in lines[: start - 1] if ln.strip()]
            marker = NOT_TESTED.search(before[-1] if before else "")
            reason = marker["reason"] if marker else None
            if lang == "python" and "is the whole Python example" in " ".join(before[-3:]):
                reason = "run as its examples/ file by the next block"
            blocks.append(Block(start, lang, "\n".join(body) + "\n", reason))
        i += 1
    return blocks


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    """The six services on free ports; README port -> the test's base URL."""
    tmp = tmp_path_factory.mktemp("readme-platform")
    services = [ServiceProcess(m, env={}, tmp=tmp) for m in SERVICES]
    urls = {SERVICES[s.module][1]: s.url for s in services}
    env = {"MLOPS_DATA_DIR": str(tmp / "data"), "MLOPS_LOG_JSON": "false", "MLOPS_ENV_FILE": "", **urls}
    for svc in services:
        svc.env.update(env)
    try:
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(ServiceProcess.start, services))
        yield {SERVICES[s.module][0]: s.url for s in services}
    finally:
        for svc in services:
            svc.stop()


def rewrite_ports(code: str, urls: dict[int, str]) -> str:
    return re.sub(
        r"(?:http://)?(?:127\.0\.0\.1|localhost):(\d{4})\b",
        lambda m: urls[int(m[1])] if int(m[1]) in urls else m[0],
        code,
    )


def test_every_readme_example_runs_in_order(platform: dict[int, str], tmp_path: Path) -> None:
    blocks = readme_blocks(README.read_text())
    assert len(blocks) > 15
    skipped = [b for b in blocks if b.skip_reason and not b.skip_reason.startswith("run as its")]
    assert len(skipped) <= 4, (
        f"only what cannot run here is skipped: {[(b.line, b.skip_reason) for b in skipped]}"
    )
    for name in ("examples", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLOPS_ENV_FILE": "",
        **{var: platform[port] for port, var in SERVICES.values()},
    }
    env.pop("MLOPS_API_KEY", None)
    state = tmp_path / ".exports.sh"  # what a block exports is there for the next, as in one terminal
    state.write_text("")
    for block in blocks:
        if not block.skip_reason:
            run_block(block, tmp_path, env, state, platform)


def run_block(block: Block, cwd: Path, env: dict[str, str], state: Path, urls: dict[int, str]) -> None:
    code = rewrite_ports(block.code, urls)
    if block.lang == "python":
        (cwd / f"block-{block.line}.py").write_text(code)
        code = f"python block-{block.line}.py\n"
    else:
        assert_curl_fails_on_http_errors(block)
        code = code.replace("uv run ", "")  # the .venv is first on PATH
    script = cwd / f"block-{block.line}.sh"
    script.write_text(f"source {state}\n{code}\nexport -p > {state}\n")
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_SECONDS,
    )
    assert proc.returncode == 0, (
        f"README.md line {block.line} ({block.lang}): exit {proc.returncode}\n--- block ---\n{block.code}"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
    print(f"README.md line {block.line}: {time.monotonic() - started:.1f} s")


def assert_curl_fails_on_http_errors(block: Block) -> None:
    for match in re.finditer(r"\bcurl\b([^\n]*)", block.code):
        args = match[1]
        assert "--fail-with-body" in args or re.search(r"\s-\w*f", args), (
            f"README.md near line {block.line}: curl without --fail-with-body hides HTTP errors: {match[0]}"
        )


def test_the_python_examples_in_the_readme_are_the_files_it_runs() -> None:
    text = README.read_text()
    named = re.findall(r"`(examples/\w+\.py)` is the whole Python example.*?```python\n(.*?)```", text, re.S)
    assert len(named) >= 2
    for path, code in named:
        assert code in (ROOT / path).read_text(), f"README.md's example differs from {path}"


def test_the_quick_start_links_every_services_docs() -> None:
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for port, _ in SERVICES.values():
        assert f"http://127.0.0.1:{port}/docs" in quick_start
