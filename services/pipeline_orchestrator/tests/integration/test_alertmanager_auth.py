"""AlertManager's webhook needs a credential: the alert webhook token when one is set, otherwise
an editor API key whenever API keys are configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlops_client.errors import AuthError
from mlops_client.pipelines import PipelinesClient
from orchestrator_helpers import define, sh_task, start, wait_run
from pipeline_orchestrator.app import create_app
from pipeline_orchestrator.settings import OrchestratorSettings
from pydantic import ValidationError

ADMIN, VIEWER, EDITOR = "a" * 24, "v" * 24, "e" * 24
TOKEN = "t0ken-for-alertmanager-0123456789"
KEYS = f"admin:ops:{ADMIN},viewer:dash:{VIEWER},editor:pipelines:{EDITOR}"
ALERTS = {"alerts": [{"labels": {"alertname": "Drift", "pipeline": "retrain"}}]}


def _client(tmp_path: Path, **settings: object) -> Iterator[TestClient]:
    values = OrchestratorSettings(
        data_dir=tmp_path, log_level="WARNING", workers=1, api_keys=KEYS, **settings
    )  # type: ignore[arg-type]
    with TestClient(create_app(values), raise_server_exceptions=False) as client:
        created = client.post(
            "/api/pipelines",
            json={"name": "retrain", "tasks": [sh_task("a")]},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert created.status_code == 201, created.text
        yield client


@pytest.fixture()
def with_token(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path, alert_webhook_token=TOKEN)


@pytest.fixture()
def keys_only(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _post(client: TestClient, credential: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    response = client.post("/api/triggers/alertmanager", json=ALERTS, headers=headers)
    return response.status_code, response.json()


def test_with_a_token_only_the_token_triggers(with_token: TestClient) -> None:
    for credential in (None, "wrong-token-0123456789", ADMIN, EDITOR):
        status, body = _post(with_token, credential)
        assert status == 401 and body["error"]["code"] == "UNAUTHORIZED", (credential, body)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert with_token.get("/api/runs", headers=admin).json()["total"] == 0, "nothing was started"
    # the client sends the token instead of its API key when given one
    client = PipelinesClient("http://testserver", api_key=EDITOR, transport=with_token._transport)
    with pytest.raises(AuthError):
        client.notify_alerts(ALERTS)
    body = client.notify_alerts(ALERTS, token=TOKEN)
    assert len(body["started"]) == 1, body
    run_id = body["started"][0]["run_id"]
    run = with_token.get(f"/api/runs/{run_id}", headers=admin).json()
    assert run["trigger"] == "alertmanager"
    audit = with_token.get("/api/audit-log", headers=admin).json()["items"]
    assert any(e["actor"] == "alertmanager" and e["path"] == "/api/triggers/alertmanager" for e in audit)
    # the token opens this route only
    assert with_token.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_without_a_token_the_webhook_needs_an_editor_key(keys_only: TestClient) -> None:
    assert _post(keys_only, None)[0] == 401
    assert _post(keys_only, TOKEN)[0] == 401
    assert _post(keys_only, VIEWER)[0] == 403
    status, body = _post(keys_only, EDITOR)
    assert status == 200 and len(body["started"]) == 1, body


def test_a_placeholder_token_is_refused_at_start_up(tmp_path: Path) -> None:
    for token in ("changeme", "short"):
        with pytest.raises(ValidationError, match="placeholder"):
            OrchestratorSettings(data_dir=tmp_path, alert_webhook_token=token)  # type: ignore[arg-type]
    assert OrchestratorSettings(data_dir=tmp_path, alert_webhook_token="").alert_webhook_token is None  # type: ignore[arg-type]


def test_task_processes_do_not_inherit_the_webhook_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell task (data from anyone who can define a pipeline) must not read the credential."""
    monkeypatch.setenv("MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN", TOKEN)
    settings = OrchestratorSettings(data_dir=tmp_path, log_level="WARNING", workers=1)
    assert settings.alert_webhook_token is not None, "the token came from the environment"
    leak = 'test -z "${MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN:-}"'
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        define(client, "leak-check", [sh_task("env", command=leak)])
        run = wait_run(client, start(client, "leak-check"))
    assert run["state"] == "succeeded", run
