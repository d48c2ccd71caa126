"""Kubernetes executor: one ``batch/v1`` Job per task attempt.

The Job's single container runs ``python -m pipeline_orchestrator.worker run --payload-env
MLOPS_TASK_PAYLOAD``, which reports over the orchestrator's worker API like a Celery worker does.
Retries are the orchestrator's (``backoffLimit: 0``); finished Jobs are garbage-collected by the
TTL controller. The executor talks to the API server with plain HTTPS, using the pod's
service-account token and CA when it runs in the cluster (see EXECUTORS.md for the RBAC it needs).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

import httpx

from pipeline_orchestrator.protocol import EventSink, Executor, TaskPayload
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker.remote import encode_payload

log = logging.getLogger("mlops.pipeline_orchestrator.executors.kubernetes")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PAYLOAD_ENV = "MLOPS_TASK_PAYLOAD"
CONTAINER_NAME = "task"
APP_LABEL = "mlops-pipeline-task"
#: the platform's secret (deployment/k8s/base/kustomization.yaml) and the keys a task may need
SECRET_NAME = "mlops-secrets"
SECRET_ENV = ("MLOPS_API_KEY", "MLOPS_S3_ACCESS_KEY", "MLOPS_S3_SECRET_KEY")
#: the orchestrator's own settings passed on to its tasks: where the other services and the
#: artifact store are (a Job cannot use the kustomize-generated config map: its name is hashed)
PASSTHROUGH_ENV = (
    "MLOPS_MODEL_REGISTRY_URL",
    "MLOPS_FEATURE_STORE_URL",
    "MLOPS_EXPERIMENT_TRACKING_URL",
    "MLOPS_PIPELINE_ORCHESTRATOR_URL",
    "MLOPS_AB_TESTING_URL",
    "MLOPS_MODEL_SERVING_URL",
    "MLOPS_ARTIFACT_STORE",
    "MLOPS_S3_ENDPOINT",
    "MLOPS_S3_BUCKET",
    "MLOPS_S3_SECURE",
    "MLOPS_S3_REGION",
    "MLOPS_PIPELINE_ORCHESTRATOR_ARTIFACT_STORE",
    "MLOPS_PIPELINE_ORCHESTRATOR_S3_BUCKET",
    "MLOPS_LOG_LEVEL",
    "MLOPS_LOG_JSON",
)
#: the time a pod may take to be scheduled and pull its image, on top of the task's own timeout
#: (the worker enforces the timeout itself and reports it; the Job deadline is the backstop)
DEADLINE_STARTUP_SECONDS = 300
NAME_MAX = 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def dns_label(text: str, max_length: int = NAME_MAX) -> str:
    """``text`` as a DNS-1123 label fragment: lower-case alphanumerics and '-', no edge dashes."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    label = re.sub(r"-{2,}", "-", label)
    return label[:max_length].strip("-")


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value (≤63 chars of [A-Za-z0-9-_.], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:NAME_MAX]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    assert _LABEL_VALUE.match(value), value
    return value


def job_name(payload: TaskPayload) -> str:
    """``mlops-<pipeline>-<task>-a<attempt>-<hash>``: a DNS-1123 label, ≤63 chars, unique per attempt."""
    digest = hashlib.sha256(payload.attempt_id.encode()).hexdigest()[:10]
    tail = f"-a{payload.attempt}-{digest}"
    head = dns_label(f"mlops-{payload.pipeline}-{payload.task}", NAME_MAX - len(tail))
    return f"{head}{tail}"


def cpu_quantity(cores: float) -> str:
    """2 -> "2"; 0.5 -> "500m"; 1.25 -> "1250m" (at least 1m)."""
    if float(cores).is_integer():
        return str(int(cores))
    return f"{max(1, math.ceil(float(cores) * 1000))}m"


def resource_requirements(resources: dict[str, Any]) -> dict[str, dict[str, str]]:
    """requests = limits for cpu and memory (a task gets what it asked for); GPUs as limits."""
    wanted: dict[str, str] = {}
    if resources.get("cpu"):
        wanted["cpu"] = cpu_quantity(float(resources["cpu"]))
    if resources.get("memory"):
        wanted["memory"] = str(resources["memory"])
    limits = dict(wanted)
    if resources.get("gpu"):
        limits["nvidia.com/gpu"] = str(math.ceil(float(resources["gpu"])))
    out: dict[str, dict[str, str]] = {}
    if wanted:
        out["requests"] = wanted
    if limits:
        out["limits"] = limits
    return out


def _env(
    payload: TaskPayload, settings: OrchestratorSettings, environ: dict[str, str]
) -> list[dict[str, Any]]:
    env: dict[str, dict[str, Any]] = {}
    for name in PASSTHROUGH_ENV:
        if environ.get(name):
            env[name] = {"name": name, "value": environ[name]}
    for name, value in payload.env.items():
        env[name] = {"name": name, "value": str(value)}
    # the worker's own variables win over the task's
    env["MLOPS_PIPELINE_ORCHESTRATOR_LEASE_SECONDS"] = {
        "name": "MLOPS_PIPELINE_ORCHESTRATOR_LEASE_SECONDS",
        "value": f"{settings.lease_seconds:g}",
    }
    for name in SECRET_ENV:
        env[name] = {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": name, "optional": True}},
        }
    env[PAYLOAD_ENV] = {"name": PAYLOAD_ENV, "value": encode_payload(payload)}
    return list(env.values())


def job_manifest(
    payload: TaskPayload, settings: OrchestratorSettings, *, environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """The Job that runs ``payload``.

    ``environ`` (default: os.environ) supplies the MLOPS_* settings passed on to the task.
    """
    environ = dict(os.environ if environ is None else environ)
    name = job_name(payload)
    labels = {
        "app.kubernetes.io/name": APP_LABEL,
        "app.kubernetes.io/component": "pipeline-task",
        "app.kubernetes.io/part-of": "mlops-platform",
        "app.kubernetes.io/managed-by": "pipeline-orchestrator",
        "mlops.run-id": label_value(payload.run_id),
        "mlops.pipeline": label_value(payload.pipeline),
        "mlops.task": label_value(payload.task),
        "mlops.attempt": str(payload.attempt),
        "mlops.attempt-id": label_value(payload.attempt_id),
    }
    annotations = {
        "mlops.pipeline": payload.pipeline,
        "mlops.task": payload.task,
        "mlops.run-id": payload.run_id,
        "mlops.attempt-id": payload.attempt_id,
    }
    image = payload.spec.get("image") if isinstance(payload.spec.get("image"), str) else None
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image or settings.k8s_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "pipeline_orchestrator.worker", "run", "--payload-env", PAYLOAD_ENV],
        "env": _env(payload, settings, environ),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    resources = resource_requirements(payload.resources)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if settings.k8s_service_account:
        pod_spec["serviceAccountName"] = settings.k8s_service_account
    else:
        pod_spec["automountServiceAccountToken"] = False  # a task does not talk to the cluster
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": settings.k8s_ttl_seconds_after_finished,
        "template": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": pod_spec,
        },
    }
    if payload.timeout_seconds:
        job_spec["activeDeadlineSeconds"] = (
            math.ceil(float(payload.timeout_seconds)) + DEADLINE_STARTUP_SECONDS
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.k8s_namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": job_spec,
    }


class KubernetesError(RuntimeError):
    pass


class KubernetesExecutor(Executor):
    name = "kubernetes"
    remote = True

    def __init__(
        self,
        settings: OrchestratorSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    ):
        self.settings = settings
        self.namespace = settings.k8s_namespace
        self._transport = transport
        self._sa_dir = service_account_dir
        self._http: httpx.Client | None = None
        self._jobs: dict[str, str] = {}  # attempt id -> job name, for attempts submitted by this process
        self._lock = threading.Lock()
        self._sink: EventSink | None = None

    # -- HTTP -------------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            verify: Any = True
            ca = self._sa_dir / "ca.crt"
            if ca.exists():
                verify = str(ca)
            self._http = httpx.Client(
                base_url=self.settings.k8s_api_url.rstrip("/"),
                verify=verify,
                timeout=httpx.Timeout(30.0, connect=10.0),
                transport=self._transport,
            )
        return self._http

    def _headers(self) -> dict[str, str]:
        # re-read each time: the kubelet rotates projected service-account tokens
        headers = {"Accept": "application/json"}
        token = self._sa_dir / "token"
        if token.exists():
            headers["Authorization"] = f"Bearer {token.read_text().strip()}"
        return headers

    def _jobs_path(self) -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs"

    # -- Executor ---------------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        self._sink = sink  # workers report over HTTP

    def submit(self, payload: TaskPayload) -> None:
        if not payload.callback_url or not payload.callback_token:
            raise ValueError("a Kubernetes attempt needs payload.callback_url and payload.callback_token")
        manifest = job_manifest(payload, self.settings)
        name = manifest["metadata"]["name"]
        response = self._client().post(self._jobs_path(), json=manifest, headers=self._headers())
        if response.status_code == 409:  # submitted before (the orchestrator restarted): same attempt
            log.info("job %s exists already", name)
        elif response.status_code >= 400:
            raise KubernetesError(
                f"creating job {name} failed: HTTP {response.status_code}: {response.text[:500]}"
            )
        with self._lock:
            self._jobs[payload.attempt_id] = name

    def cancel(self, attempt_id: str) -> None:
        with self._lock:
            name = self._jobs.pop(attempt_id, None)
        try:
            names = [name] if name else self._find_jobs(attempt_id)
            for job in names:
                response = self._client().delete(
                    f"{self._jobs_path()}/{job}",
                    params={"propagationPolicy": "Background"},
                    headers=self._headers(),
                )
                if response.status_code >= 400 and response.status_code != 404:
                    log.warning(
                        "deleting job %s: HTTP %s: %s", job, response.status_code, response.text[:300]
                    )
        except httpx.HTTPError as exc:
            # the worker stops at its next heartbeat anyway ({"continue": false})
            log.warning("cancelling attempt %s: %s", attempt_id, exc)

    def _find_jobs(self, attempt_id: str) -> list[str]:
        response = self._client().get(
            self._jobs_path(),
            params={"labelSelector": f"mlops.attempt-id={label_value(attempt_id)}"},
            headers=self._headers(),
        )
        if response.status_code >= 400:
            log.warning("listing jobs of attempt %s: HTTP %s", attempt_id, response.status_code)
            return []
        return [item["metadata"]["name"] for item in response.json().get("items", [])]

    def free_slots(self) -> int | None:
        return None  # the cluster's scheduler queues pods

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
