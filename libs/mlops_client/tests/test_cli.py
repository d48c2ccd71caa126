from __future__ import annotations

import json
from pathlib import Path

from mlops_client.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_register_upload_list_and_download(registry_url: str, unique: str, tmp_path: Path) -> None:
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"pickled" * 1000)
    code, out, _ = _run(
        registry_url,
        "models",
        "register",
        unique,
        "--framework",
        "sklearn",
        "--metric",
        "accuracy=0.93",
        "--param",
        "depth=4",
        "--tag",
        "cli",
        "--file",
        str(artifact),
    )
    assert code == 0, out
    assert f"registered {unique} version 1" in out
    code, out, _ = _run(registry_url, "models", "list", "--tag", "cli", "--metric", "accuracy>0.9", "--json")
    assert code == 0 and unique in [m["name"] for m in json.loads(out)]
    code, out, _ = _run(registry_url, "models", "versions", unique, "--json")
    version = json.loads(out)[0]
    assert version["params"] == {"depth": 4} and version["metrics"] == {"accuracy": 0.93}
    target = tmp_path / "copy.pkl"
    code, out, _ = _run(registry_url, "models", "download", unique, "1", "-o", str(target))
    assert code == 0 and target.read_bytes() == artifact.read_bytes()


def test_alias_stage_history_and_delete(registry_url: str, unique: str) -> None:
    for _ in range(2):
        assert _run(registry_url, "models", "register", unique)[0] == 0
    assert _run(registry_url, "models", "alias", "set", unique, "prod", "1")[0] == 0
    assert _run(registry_url, "models", "alias", "set", unique, "prod", "2")[0] == 0
    code, out, _ = _run(registry_url, "models", "alias", "rollback", unique, "prod")
    assert code == 0 and "→ 1" in out
    code, out, _ = _run(registry_url, "models", "alias", "get", unique, "prod", "--json")
    assert json.loads(out)["version"] == "1"
    code, out, _ = _run(registry_url, "models", "stage", unique, "2", "Production", "--archive-existing")
    assert code == 0 and "Production" in out
    code, out, _ = _run(registry_url, "models", "history", unique, "--json")
    assert [h["action"] for h in json.loads(out)][:2] == ["transition", "rollback"]
    assert _run(registry_url, "models", "delete", unique, "--version", "1")[0] == 0
    assert [
        v["version"] for v in json.loads(_run(registry_url, "models", "versions", unique, "--json")[1])
    ] == ["2"]


def test_errors_print_code_and_exit_1(registry_url: str, unique: str) -> None:
    code, _, err = _run(registry_url, "models", "get", unique)
    assert code == 1
    assert "MODEL_NOT_FOUND" in err
    code, _, err = _run(registry_url, "models", "register", unique, "--metric", "accuracy=high")
    assert code == 2 and "needs a number" in err


def test_register_with_a_file_that_fails_to_upload_leaves_no_version(
    small_upload_registry_url: str, unique: str, tmp_path: Path
) -> None:
    big = tmp_path / "model.pkl"
    big.write_bytes(b"x" * 5000)
    code, _, _ = _run(small_upload_registry_url, "models", "register", unique, "--file", str(big))
    assert code != 0
    code, out, _ = _run(small_upload_registry_url, "models", "list", "--json")
    assert code == 0 and unique not in [m["name"] for m in json.loads(out)]
