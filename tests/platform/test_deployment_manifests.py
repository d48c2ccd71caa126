"""Every service is deployed the same way everywhere: `make run`, compose (image, database, port,
/ready healthcheck, URL for the others, a one-shot migration it waits for), the image's default
port, the PostgreSQL init script, Kubernetes (Deployment with a migrate init container, Service,
probes, image tag per environment, a replica count or an autoscaler) and Prometheus' scrape
targets. A service missing from one of them fails here."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {  # module: port, in the order `make run` starts them
    "model_registry": 8000,
    "feature_store": 8002,
    "experiment_tracking": 8003,
    "pipeline_orchestrator": 8004,
    "ab_testing": 8090,
    "model_serving": 8080,
}
K8S = ROOT / "deployment" / "k8s"
ENVIRONMENTS = ["staging", "production"]


def dashed(module: str) -> str:
    return module.replace("_", "-")


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text())


def base_documents() -> list[dict[str, Any]]:
    resources = load_yaml("deployment/k8s/base/kustomization.yaml")["resources"]
    return [doc for name in resources for doc in yaml.safe_load_all((K8S / "base" / name).read_text()) if doc]


def base_object(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in base_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} {name} in deployment/k8s/base, found {len(found)}"
    return found[0]


def patch_ops(env: str, kind: str, name: str) -> dict[str, Any]:
    """path -> value of the environment's JSON patches aimed at one object by kind and name."""
    kustomization = load_yaml(f"deployment/k8s/environments/{env}/kustomization.yaml")
    return {
        op["path"]: op.get("value")
        for patch in kustomization.get("patches", [])
        if patch["target"].get("kind") == kind and patch["target"].get("name") == name
        for op in yaml.safe_load(patch["patch"])
    }


def test_make_run_starts_every_service_on_its_port_model_serving_last() -> None:
    run_all = runpy.run_path(str(ROOT / "scripts" / "dev" / "run_all.py"), run_name="run_all_under_test")
    started = [(module, port) for module, port, _ in run_all["SERVICES"]]
    assert started == list(SERVICES.items())
    assert all(prefix == module.upper() for module, _, prefix in run_all["SERVICES"])


@pytest.mark.parametrize("module", SERVICES)
def test_compose_builds_runs_and_checks_the_service(module: str) -> None:
    compose = load_yaml("docker-compose.platform.yml")
    port = SERVICES[module]
    service = compose["services"][dashed(module)]
    assert service["build"]["args"] == {"SERVICE": module}
    assert service["build"]["dockerfile"] == "deployment/docker/Dockerfile.service"
    assert service["image"] == f"mlops-platform/{dashed(module)}:${{MLOPS_IMAGE_TAG:-latest}}"
    assert service["environment"]["MLOPS_DATABASE_URL"].endswith(f"@postgres:5432/{module}")
    assert service["ports"] == [f"{port}:{port}"]
    assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/ready"
    assert compose["x-env"][f"MLOPS_{module.upper()}_URL"] == f"http://{dashed(module)}:{port}"


@pytest.mark.parametrize("module", SERVICES)
def test_compose_migrates_the_database_in_a_one_shot_the_service_waits_for(module: str) -> None:
    services = load_yaml("docker-compose.platform.yml")["services"]
    name = dashed(module)
    service, migrate = services[name], services[f"{name}-migrate"]
    assert migrate["command"] == ["python", "-m", module, "migrate"]
    assert migrate["image"] == service["image"] and migrate["build"] == service["build"]
    assert migrate["environment"]["MLOPS_DATABASE_URL"] == service["environment"]["MLOPS_DATABASE_URL"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "ports" not in migrate and "healthcheck" not in migrate
    assert service["depends_on"][f"{name}-migrate"] == {"condition": "service_completed_successfully"}
    assert service["environment"]["MLOPS_MIGRATE_ON_START"] == "false"


def test_compose_runs_nothing_else_at_start_up_migrations_and_one_shot_per_service() -> None:
    services = load_yaml("docker-compose.platform.yml")["services"]
    assert sorted(n for n in services if n.endswith("-migrate")) == sorted(
        f"{dashed(m)}-migrate" for m in SERVICES
    )
    for name, service in services.items():
        if service.get("environment", {}).get("MLOPS_DATABASE_URL") and not name.endswith("-migrate"):
            assert service["environment"]["MLOPS_MIGRATE_ON_START"] == "false", name
    # the Celery workers use no database: nothing to migrate, nothing to wait for
    worker = services["pipeline-worker"]
    assert "MLOPS_DATABASE_URL" not in worker["environment"]
    assert not any(dep.endswith("-migrate") for dep in worker["depends_on"])


def test_compose_model_serving_waits_for_the_registry_and_requires_a_key() -> None:
    service = load_yaml("docker-compose.platform.yml")["services"]["model-serving"]
    assert service["depends_on"]["model-registry"] == {"condition": "service_healthy"}
    assert service["environment"]["MLOPS_API_KEY"].startswith("${MLOPS_API_KEY:?")
    env = service["environment"]
    assert env["MLOPS_MODEL_REGISTRY_URL"] == "http://model-registry:8000"
    assert env["MLOPS_FEATURE_STORE_URL"] == "http://feature-store:8002"
    assert env["MLOPS_AB_TESTING_URL"] == "http://ab-testing:8090"


@pytest.mark.parametrize("module", SERVICES)
def test_the_image_knows_the_port_and_postgres_creates_the_database(module: str) -> None:
    dockerfile = (ROOT / "deployment" / "docker" / "Dockerfile.service").read_text()
    assert f"{module}) port={SERVICES[module]} ;;" in dockerfile
    init = (ROOT / "deployment" / "postgres" / "init-databases.sh").read_text()
    default = re.search(r"\$\{MLOPS_DATABASES:-([^}]*)\}", init)
    assert default is not None and module in default[1].split()


@pytest.mark.parametrize("module", SERVICES)
def test_kubernetes_base_runs_the_service_behind_its_probes(module: str) -> None:
    name, port = dashed(module), SERVICES[module]
    deployment = base_object("Deployment", name)
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    container = template["spec"]["containers"][0]
    assert container["image"] == f"mlops-platform/{name}:latest"
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert {"configMapRef": {"name": "mlops-config"}} in container["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    db = env["MLOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert db == {"name": "mlops-secrets", "key": f"{name}-database-url"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert set(container["resources"]) == {"requests", "limits"}
    service = base_object("Service", f"{name}-service")
    assert service["spec"]["ports"][0]["port"] == port
    literals = load_yaml("deployment/k8s/base/kustomization.yaml")["configMapGenerator"][0]["literals"]
    assert f"MLOPS_{module.upper()}_URL=http://{name}-service.mlops-platform:{port}" in literals


@pytest.mark.parametrize("module", SERVICES)
def test_kubernetes_migrates_in_an_init_container_before_the_service_starts(module: str) -> None:
    name = dashed(module)
    spec = base_object("Deployment", name)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    (migrate,) = spec["initContainers"]
    assert migrate["name"] == "migrate"
    assert migrate["image"] == container["image"]
    assert [*migrate.get("command", []), *migrate.get("args", [])] == ["python", "-m", module, "migrate"]
    assert migrate["envFrom"] == container["envFrom"]
    env = {e["name"]: e for e in migrate["env"]}
    main_env = {e["name"]: e for e in container["env"]}
    assert env["MLOPS_DATABASE_URL"] == main_env["MLOPS_DATABASE_URL"]
    assert env["MLOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{name}-database-url"
    assert migrate["securityContext"] == container["securityContext"]
    assert set(migrate["resources"]) == {"requests", "limits"}
    literals = load_yaml("deployment/k8s/base/kustomization.yaml")["configMapGenerator"][0]["literals"]
    assert "MLOPS_MIGRATE_ON_START=false" in literals
    assert "MLOPS_MIGRATE_ON_START=true" not in literals


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("module", SERVICES)
def test_each_environment_tags_the_image_and_sizes_the_service(module: str, env: str) -> None:
    kustomization = load_yaml(f"deployment/k8s/environments/{env}/kustomization.yaml")
    name = dashed(module)
    assert f"mlops-platform/{name}" in [image["name"] for image in kustomization["images"]]
    counted = name in [r["name"] for r in kustomization.get("replicas", [])]
    autoscaled = any(
        d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"] == name
        for d in base_documents()
    )
    assert counted != autoscaled, f"{name}: a replica count or an autoscaler (which owns the count), not both"


def test_model_serving_autoscales_on_cpu_with_more_room_in_production() -> None:
    hpa = base_object("HorizontalPodAutoscaler", "model-serving")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "model-serving",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "replicas" not in base_object("Deployment", "model-serving")["spec"], "the autoscaler owns it"
    base_min, base_max = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert 1 <= base_min < base_max
    production = patch_ops("production", "HorizontalPodAutoscaler", "model-serving")
    assert production["/spec/maxReplicas"] > base_max
    assert base_min < production["/spec/minReplicas"] < production["/spec/maxReplicas"]
    staging = patch_ops("staging", "HorizontalPodAutoscaler", "model-serving")
    assert base_min < staging.get("/spec/maxReplicas", base_max) <= base_max


@pytest.mark.parametrize("module", SERVICES)
def test_prometheus_scrapes_the_service_and_the_env_example_names_its_url(module: str) -> None:
    config = load_yaml("monitoring/prometheus/prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mlops-services"]
    target = f"{dashed(module)}:{SERVICES[module]}"
    assert {"targets": [target], "labels": {"service": module}} in job["static_configs"]
    env_example = (ROOT / ".env.example").read_text()
    assert f"\nMLOPS_{module.upper()}_URL=http://127.0.0.1:{SERVICES[module]}\n" in env_example
