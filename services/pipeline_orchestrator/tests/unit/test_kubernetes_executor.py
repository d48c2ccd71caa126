"""The Kubernetes executor's Job manifests, checked against the official Kubernetes models.

No cluster here: ``kubernetes.client`` deserialises each manifest into ``V1Job`` (required fields,
types) and serialises it back; a key the models do not know (a typo) or a value of the wrong type
would not survive the round trip.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import kubernetes
import pytest
from pipeline_orchestrator.executors.kubernetes import (
    APP_LABEL,
    DEADLINE_STARTUP_SECONDS,
    PAYLOAD_ENV,
    SECRET_NAME,
    KubernetesExecutor,
    cpu_quantity,
    job_manifest,
    job_name,
)
from pipeline_orchestrator.protocol import TaskPayload
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker.remote import decode_payload

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def make_payload(**overrides: Any) -> TaskPayload:
    values: dict[str, Any] = {
        "attempt_id": str(uuid.uuid4()),
        "run_id": str(uuid.uuid4()),
        "pipeline": "train-iris",
        "task": "train",
        "attempt": 1,
        "kind": "python",
        "spec": {"callable": "pkg.mod:train", "inputs": {"n": 3}},
        "timeout_seconds": 600,
        "resources": {"cpu": 2, "memory": "2Gi"},
        "artifact_prefix": "runs/x/train/1",
        "callback_url": "http://pipeline-orchestrator-service.mlops-platform:8004",
        "callback_token": "secret-token-value",
        "env": {"FOO": "bar"},
    }
    values.update(overrides)
    return TaskPayload(**values)


@pytest.fixture
def settings() -> OrchestratorSettings:
    return OrchestratorSettings(
        executor="kubernetes",
        k8s_namespace="ml-jobs",
        k8s_image="registry.example/mlops/pipeline-orchestrator:1.2.3",
        k8s_ttl_seconds_after_finished=900,
        lease_seconds=20,
    )


def validate(manifest: dict[str, Any]) -> Any:
    """Deserialise into the official V1Job model and check nothing was lost or coerced."""
    api = kubernetes.client.ApiClient()
    job = api._ApiClient__deserialize(manifest, "V1Job")  # type: ignore[attr-defined]
    assert isinstance(job, kubernetes.client.V1Job)
    assert api.sanitize_for_serialization(job) == manifest
    return job


def env_of(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    entries = container["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {e["name"]: e for e in entries}


def assert_labels_valid(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        assert len(name) <= 63 and LABEL_KEY_NAME.match(name), key
        if prefix:
            assert len(prefix) <= 253 and re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", prefix), key
        assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)


def test_manifest_is_a_valid_job(settings: OrchestratorSettings) -> None:
    payload = make_payload()
    manifest = job_manifest(payload, settings, environ={})
    job = validate(manifest)

    assert job.api_version == "batch/v1" and job.kind == "Job"
    assert job.metadata.namespace == "ml-jobs"
    assert DNS_LABEL.match(job.metadata.name) and len(job.metadata.name) <= 63
    assert job.spec.backoff_limit == 0
    assert job.spec.ttl_seconds_after_finished == 900
    assert job.spec.active_deadline_seconds == 600 + DEADLINE_STARTUP_SECONDS
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    assert pod.security_context.run_as_non_root is True
    assert pod.automount_service_account_token is False
    assert pod.service_account_name is None
    (container,) = pod.containers
    assert container.image == "registry.example/mlops/pipeline-orchestrator:1.2.3"
    assert container.command == [
        "python",
        "-m",
        "pipeline_orchestrator.worker",
        "run",
        "--payload-env",
        PAYLOAD_ENV,
    ]
    assert container.security_context.allow_privilege_escalation is False


def test_labels(settings: OrchestratorSettings) -> None:
    payload = make_payload(task="search[17]", attempt=3)
    manifest = job_manifest(payload, settings, environ={})
    validate(manifest)
    labels = manifest["metadata"]["labels"]
    assert_labels_valid(labels)
    assert labels["app.kubernetes.io/name"] == APP_LABEL
    assert labels["mlops.run-id"] == payload.run_id
    assert labels["mlops.task"] == "search-17"
    assert labels["mlops.attempt"] == "3"
    assert labels["mlops.attempt-id"] == payload.attempt_id
    # the pods carry them too (kubectl get pods -l mlops.run-id=...)
    assert manifest["spec"]["template"]["metadata"]["labels"] == labels
    # the exact names stay readable in annotations
    assert manifest["metadata"]["annotations"]["mlops.task"] == "search[17]"


@pytest.mark.parametrize(
    ("pipeline", "task"),
    [
        ("train-iris", "train"),
        ("A_Very.Long_Pipeline-Name" * 4, "hyper_parameter_search_with_a_long_name[123]"),
        ("p", "t"),
        ("__weird__", "..x.."),
        ("UPPER", "Trial[0]"),
    ],
)
def test_job_names_are_dns_labels_and_unique(
    settings: OrchestratorSettings, pipeline: str, task: str
) -> None:
    names = set()
    for attempt in (1, 2):
        for _ in range(20):
            payload = make_payload(pipeline=pipeline, task=task, attempt=attempt)
            name = job_name(payload)
            assert len(name) <= 63, name
            assert DNS_LABEL.match(name), name
            assert name.startswith("mlops-")
            assert f"-a{attempt}-" in name
            names.add(name)
            manifest = job_manifest(payload, settings, environ={})
            assert manifest["metadata"]["name"] == name
            assert_labels_valid(manifest["metadata"]["labels"])
            validate(manifest)
    assert len(names) == 40  # one per attempt id


def test_same_attempt_same_name(settings: OrchestratorSettings) -> None:
    payload = make_payload()
    assert job_name(payload) == job_name(make_payload(**{**payload.to_dict()}))


@pytest.mark.parametrize(
    ("resources", "requests", "limits"),
    [
        ({"cpu": 2, "memory": "2Gi"}, {"cpu": "2", "memory": "2Gi"}, {"cpu": "2", "memory": "2Gi"}),
        ({"cpu": 0.5}, {"cpu": "500m"}, {"cpu": "500m"}),
        (
            {"cpu": 1.25, "memory": "512Mi", "gpu": 1},
            {"cpu": "1250m", "memory": "512Mi"},
            {"cpu": "1250m", "memory": "512Mi", "nvidia.com/gpu": "1"},
        ),
        ({"gpu": 2}, None, {"nvidia.com/gpu": "2"}),
        ({"memory": "1G"}, {"memory": "1G"}, {"memory": "1G"}),
    ],
)
def test_resources(
    settings: OrchestratorSettings,
    resources: dict[str, Any],
    requests: dict[str, str] | None,
    limits: dict[str, str],
) -> None:
    manifest = job_manifest(make_payload(resources=resources), settings, environ={})
    job = validate(manifest)
    got = job.spec.template.spec.containers[0].resources
    assert got.requests == requests
    assert got.limits == limits


def test_no_resources_no_timeout(settings: OrchestratorSettings) -> None:
    manifest = job_manifest(make_payload(resources={}, timeout_seconds=None), settings, environ={})
    job = validate(manifest)
    assert job.spec.active_deadline_seconds is None
    assert job.spec.template.spec.containers[0].resources is None


def test_fractional_timeout_rounds_up(settings: OrchestratorSettings) -> None:
    manifest = job_manifest(make_payload(timeout_seconds=0.2), settings, environ={})
    assert validate(manifest).spec.active_deadline_seconds == 1 + DEADLINE_STARTUP_SECONDS


def test_cpu_quantities() -> None:
    assert cpu_quantity(1) == "1"
    assert cpu_quantity(4.0) == "4"
    assert cpu_quantity(0.25) == "250m"
    assert cpu_quantity(0.0001) == "1m"


def test_env_payload_and_secrets(settings: OrchestratorSettings) -> None:
    payload = make_payload(env={"FOO": "bar", "MLOPS_TASK_PAYLOAD": "hijack", "MLOPS_API_KEY": "plain"})
    environ = {
        "MLOPS_MODEL_REGISTRY_URL": "http://model-registry-service.mlops-platform:8000",
        "MLOPS_EXPERIMENT_TRACKING_URL": "http://experiment-tracking-service.mlops-platform:8003",
        "MLOPS_S3_ENDPOINT": "minio:9000",
        "MLOPS_ARTIFACT_STORE": "s3",
        "MLOPS_DATABASE_URL": "postgresql://must-not-leak",
        "MLOPS_API_KEYS": "admin:ops:must-not-leak",
        "MLOPS_API_KEY": "must-not-leak-either",
        "UNRELATED": "x",
    }
    manifest = job_manifest(payload, settings, environ=environ)
    validate(manifest)
    env = env_of(manifest)

    assert env["FOO"]["value"] == "bar"
    assert env["MLOPS_MODEL_REGISTRY_URL"]["value"] == environ["MLOPS_MODEL_REGISTRY_URL"]
    assert env["MLOPS_EXPERIMENT_TRACKING_URL"]["value"] == environ["MLOPS_EXPERIMENT_TRACKING_URL"]
    assert env["MLOPS_S3_ENDPOINT"]["value"] == "minio:9000"
    assert env["MLOPS_ARTIFACT_STORE"]["value"] == "s3"
    assert env["MLOPS_PIPELINE_ORCHESTRATOR_LEASE_SECONDS"]["value"] == "20"
    for leaked in ("MLOPS_DATABASE_URL", "MLOPS_API_KEYS", "UNRELATED"):
        assert leaked not in env
    text = str(manifest)
    assert "must-not-leak" not in text

    # the API key (and S3 keys) come from the platform's secret, never as plain values
    for name in ("MLOPS_API_KEY", "MLOPS_S3_ACCESS_KEY", "MLOPS_S3_SECRET_KEY"):
        assert "value" not in env[name]
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": SECRET_NAME, "key": name, "optional": True}
    assert SECRET_NAME == "mlops-secrets"  # deployment/k8s/base/kustomization.yaml

    # the payload travels whole, and the task cannot replace it
    decoded = decode_payload(env[PAYLOAD_ENV]["value"])
    assert decoded == payload
    assert decoded.callback_token == "secret-token-value"


def test_image_and_service_account_overrides(settings: OrchestratorSettings) -> None:
    custom = settings.model_copy(update={"k8s_service_account": "pipeline-tasks"})
    payload = make_payload(spec={"callable": "pkg.mod:f", "image": "ghcr.io/team/trainer:7"})
    job = validate(job_manifest(payload, custom, environ={}))
    pod = job.spec.template.spec
    assert pod.containers[0].image == "ghcr.io/team/trainer:7"
    assert pod.service_account_name == "pipeline-tasks"
    assert pod.automount_service_account_token is None


def test_manifest_reads_process_environment(
    settings: OrchestratorSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_FEATURE_STORE_URL", "http://feature-store-service.mlops-platform:8002")
    env = env_of(job_manifest(make_payload(), settings))
    assert env["MLOPS_FEATURE_STORE_URL"]["value"] == "http://feature-store-service.mlops-platform:8002"


def test_submit_refuses_payload_without_callback(settings: OrchestratorSettings) -> None:
    executor = KubernetesExecutor(settings)
    with pytest.raises(ValueError, match="callback_url"):
        executor.submit(make_payload(callback_url=None))
    executor.stop()
