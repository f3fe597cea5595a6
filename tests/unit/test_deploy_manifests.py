"""An operator deploys crmflow from deploy/: the compose file and the Kubernetes manifests say what it needs.

The expectations come from the code (the worker kinds of the CLI, the settings
crmflow reads, the topic names), so a renamed setting or a new worker kind
shows up here as a deployment that no longer fits.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, ValidationError

from crmflow.workers.cli.kafka import WORKER_KINDS
from crmflow.workers.config import Settings
from crmflow.workers.kafka.clients import Topics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
# `crmflow worker all` runs every kind in one process: an alternative to the
# separate services, not one more of them.
SEPARATE_KINDS = [kind for kind in WORKER_KINDS if kind != "all"]
CONSUMER_GROUP_KINDS = ("intake", "process", "projection")
SINGLE_KINDS = ("relay", "timer")
SECRET_NAME = re.compile(r"SECRET|PASSWORD", re.IGNORECASE)
# Kubernetes starts pods in any order: a pod whose Kafka or PostgreSQL is not up yet waits for it
# instead of exiting into a crash loop.
WAIT_FLAG = "--wait-for-dependencies"
DEFAULT_OF = re.compile(r"^\$\{\w+:-(?P<default>[^}]*)\}$")


def settings_environment_names() -> set[str]:
    """Every environment variable Settings reads: the prefixed field names, or a field's own aliases."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}")
    return {name.upper() for name in names}


def as_argv(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def default_of(value: object) -> str:
    """``${NAME:-12}`` → ``12``; a plain value stays as it is."""
    text = str(value)
    match = DEFAULT_OF.match(text)
    return match["default"] if match else text


# Compose.


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def crmflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from crmflow's Dockerfile."""
    def built_from_ours(service: dict[str, Any]) -> bool:
        build = service.get("build")
        return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"

    return {name: s for name, s in compose["services"].items() if built_from_ours(s)}


def service_running(compose: dict[str, Any], argv: list[str]) -> tuple[str, dict[str, Any]]:
    matches = [(n, s) for n, s in crmflow_services(compose).items() if as_argv(s.get("command")) == argv]
    assert len(matches) == 1, f"expected one crmflow service running {argv}, found {[n for n, _ in matches]}"
    return matches[0]


def replicas_in_compose(service: dict[str, Any]) -> int:
    return int((service.get("deploy") or {}).get("replicas", 1))


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    assert test, "no healthcheck"
    return " ".join(as_argv(test) if isinstance(test, str) else test)


def all_deployment_yaml() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_deploy_holds_compose_and_kubernetes_manifests() -> None:
    assert COMPOSE_FILE in all_deployment_yaml()
    assert len(list(KUBERNETES.glob("*.yaml"))) > 1


@pytest.mark.parametrize("path", all_deployment_yaml(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_deployment_file_is_yaml_an_operator_can_apply(path: Path) -> None:
    documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert documents, f"{path} holds no YAML document"
    assert all(isinstance(d, dict) and d for d in documents), f"{path} holds a document that is not a mapping"


def test_compose_runs_the_apache_kafka_release_the_tests_run(compose: dict[str, Any]) -> None:
    from crmflow.workers.kafka.apache_kafka import KAFKA_VERSION

    pom = (REPO / ".ci" / "kafka" / "pom.xml").read_text(encoding="utf-8")
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    images = {name: s["image"] for name, s in compose["services"].items() if "kafka" in str(s.get("image", ""))}
    assert images and set(images.values()) == {f"apache/kafka:{KAFKA_VERSION}"}, images


def test_compose_runs_kafka_in_kraft_mode_without_zookeeper(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = environment_of(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    everything = json.dumps(compose).lower()
    assert "zookeeper" not in everything


def test_compose_creates_crmflows_three_topics_before_crmflow_starts(compose: dict[str, Any]) -> None:
    init = compose["services"]["kafka-init"]
    script = " ".join(as_argv(init.get("entrypoint")) + as_argv(init.get("command")))
    prefix = environment_of(service_running(compose, ["worker", "relay"])[1])["CRMFLOW_TOPIC_PREFIX"]
    for topic in Topics(prefix).all():
        assert f"--topic {topic}" in script, f"kafka-init does not create {topic}"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["restart"] == "no"


def test_topics_get_the_partitions_the_workers_are_told(compose: dict[str, Any]) -> None:
    init = compose["services"]["kafka-init"]
    created_with = set(re.findall(r'--partitions "?([^"\s]+)', " ".join(as_argv(init["command"]))))
    told = {environment_of(s)["CRMFLOW_PARTITIONS"] for s in crmflow_services(compose).values()}
    assert len(told) == 1 and created_with == told


@pytest.mark.parametrize("kind", SEPARATE_KINDS)
def test_compose_runs_each_worker_kind_as_its_own_service(compose: dict[str, Any], kind: str) -> None:
    name, service = service_running(compose, ["worker", kind])
    assert environment_of(service)["CRMFLOW_METRICS_PORT"], f"{name} serves no metrics"
    assert "stop_grace_period" in service, f"{name} gets no time to commit its batch on SIGTERM"


def test_compose_scales_consumer_groups_and_runs_one_relay_and_one_timer(compose: dict[str, Any]) -> None:
    relay_env = environment_of(service_running(compose, ["worker", "relay"])[1])
    partitions = int(default_of(relay_env["CRMFLOW_PARTITIONS"]))
    for kind in SINGLE_KINDS:
        assert replicas_in_compose(service_running(compose, ["worker", kind])[1]) == 1
    for kind in ("process", "projection"):
        replicas = replicas_in_compose(service_running(compose, ["worker", kind])[1])
        assert 2 <= replicas <= partitions, f"{kind}: {replicas} replicas for {partitions} partitions"


def test_the_api_serves_on_port_8000_with_a_secret_from_outside_the_file(compose: dict[str, Any]) -> None:
    name, api = service_running(compose, ["serve", "--host", "0.0.0.0", "--port", "8000"])
    assert any(str(port).endswith(":8000") for port in api["ports"])
    assert re.fullmatch(r"\$\{CRMFLOW_API_SECRET:\?[^}]+\}", environment_of(api)["CRMFLOW_API_SECRET"])


def test_kafka_postgres_and_the_api_report_their_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert re.search(r"kafka-(topics|broker-api-versions)\.sh", healthcheck_text(services["kafka"]))
    assert "pg_isready" in healthcheck_text(services["postgres"])
    api_name, _ = service_running(compose, ["serve", "--host", "0.0.0.0", "--port", "8000"])
    assert "/readyz" in healthcheck_text(services[api_name])


def test_every_crmflow_service_waits_for_the_topics_and_a_healthy_postgres(compose: dict[str, Any]) -> None:
    services = crmflow_services(compose)
    assert len(services) >= len(SEPARATE_KINDS) + 1
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert depends.get("kafka-init", {}).get("condition") == "service_completed_successfully", name
        assert depends.get("postgres", {}).get("condition") == "service_healthy", name


def test_crmflow_services_are_configured_only_with_settings_crmflow_reads(compose: dict[str, Any]) -> None:
    known = settings_environment_names()
    for name, service in crmflow_services(compose).items():
        env = environment_of(service)
        unknown = {key for key in env if key.upper() not in known}
        assert not unknown, f"{name} sets {sorted(unknown)}, which crmflow does not read"
        assert env["CRMFLOW_DATABASE_URL"].startswith("postgresql://crmflow:"), name
        assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka:"), name


def test_compose_commits_no_secret_and_refuses_to_start_without_one(compose: dict[str, Any]) -> None:
    checked = []
    for name, service in compose["services"].items():
        for key, value in environment_of(service).items():
            if SECRET_NAME.search(key):
                checked.append(key)
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), f"{name}: {key} is not a ${{NAME:?...}}"
    database_urls = {environment_of(s)["CRMFLOW_DATABASE_URL"] for s in crmflow_services(compose).values()}
    assert all(re.search(r"crmflow:\$\{POSTGRES_PASSWORD:\?[^}]+\}@", url) for url in database_urls)
    assert {"CRMFLOW_API_SECRET", "POSTGRES_PASSWORD"} <= set(checked)


def test_compose_deploys_the_shipped_definitions_before_the_workers_start(compose: dict[str, Any]) -> None:
    deployers = {n: s for n, s in crmflow_services(compose).items()
                 if "process deploy" in " ".join(as_argv(s.get("command")))}  # fmt: skip
    assert len(deployers) == 1
    name, job = next(iter(deployers.items()))
    assert job["restart"] == "no"
    glob = re.search(r"/app/(\S+\*\.yaml)", " ".join(as_argv(job["command"])))
    assert glob and list(REPO.glob(glob[1])), f"{name} deploys files the image does not hold"
    for kind in SEPARATE_KINDS:
        _, worker = service_running(compose, ["worker", kind])
        assert worker["depends_on"][name]["condition"] == "service_completed_successfully"


def compose_tool() -> list[str] | None:
    """`docker compose` (the plugin) or `docker-compose`, whichever answers."""
    candidates = [["docker", "compose"]] if shutil.which("docker") else []
    candidates += [["docker-compose"]] if shutil.which("docker-compose") else []
    for tool in candidates:
        try:
            if subprocess.run([*tool, "version"], capture_output=True, timeout=30).returncode == 0:
                return tool
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def test_docker_compose_accepts_the_compose_file() -> None:
    tool = compose_tool()
    if tool is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {"PATH": os.environ.get("PATH", ""), "CRMFLOW_API_SECRET": "s" * 32, "POSTGRES_PASSWORD": "p"}
    result = subprocess.run([*tool, "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True,
                            env=env, cwd=DEPLOY, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr


# Kubernetes.


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return documents


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def deployment_running(manifests: list[dict[str, Any]], argv: list[str]) -> dict[str, Any]:
    matches = [d for d in of_kind(manifests, "Deployment").values()
               if [arg for arg in container_args(d) if arg != WAIT_FLAG] == argv]  # fmt: skip
    assert len(matches) == 1, f"expected one Deployment running {argv}, found {len(matches)}"
    return matches[0]


def container_args(deployment: dict[str, Any]) -> list[str]:
    return [str(arg) for arg in deployment["spec"]["template"]["spec"]["containers"][0].get("args", [])]


def references(container: dict[str, Any]) -> set[tuple[str, str]]:
    """The (kind, name) of every ConfigMap and Secret the container's environment comes from."""
    sources = [*container.get("envFrom", []), *(v.get("valueFrom", {}) for v in container.get("env", []))]
    kinds = {"configMapRef": "ConfigMap", "secretRef": "Secret",
             "configMapKeyRef": "ConfigMap", "secretKeyRef": "Secret"}  # fmt: skip
    return {(kinds[key], ref["name"]) for source in sources for key, ref in source.items() if key in kinds}


def config_data(manifests: list[dict[str, Any]]) -> dict[str, str]:
    return of_kind(manifests, "ConfigMap")["crmflow-config"]["data"]


def pod_specs(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{m['kind']}/{m['metadata']['name']}": m["spec"]["template"]["spec"]
            for m in manifests if m["kind"] in ("Deployment", "Job")}  # fmt: skip


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "crmflow"


@pytest.mark.parametrize("kind", SEPARATE_KINDS)
def test_kubernetes_runs_each_worker_kind_with_probes_metrics_and_time_to_stop(
    manifests: list[dict[str, Any]], kind: str
) -> None:
    deployment = deployment_running(manifests, ["worker", kind])
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    metrics_port = next(p for p in container["ports"] if p["name"] == "metrics")["containerPort"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert int(env["CRMFLOW_METRICS_PORT"]) == metrics_port
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == metrics_port
    assert deployment["spec"]["replicas"] >= 1
    assert pod["spec"]["terminationGracePeriodSeconds"] >= 30
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_every_long_running_pod_waits_for_its_dependencies_instead_of_crash_looping(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert len(deployments) == len(SEPARATE_KINDS) + 1, "one Deployment per worker kind and the API"
    impatient = [name for name, d in deployments.items() if WAIT_FLAG not in container_args(d)]
    assert not impatient, f"{', '.join(impatient)} would exit when started before Kafka or PostgreSQL"


def test_exactly_one_relay_runs_even_during_an_update(manifests: list[dict[str, Any]]) -> None:
    relay = deployment_running(manifests, ["worker", "relay"])
    assert relay["spec"]["replicas"] == 1
    assert relay["spec"]["strategy"]["type"] == "Recreate"


def test_consumer_group_replicas_never_outnumber_the_partitions(manifests: list[dict[str, Any]]) -> None:
    partitions = int(config_data(manifests)["CRMFLOW_PARTITIONS"])
    for kind in CONSUMER_GROUP_KINDS:
        replicas = deployment_running(manifests, ["worker", kind])["spec"]["replicas"]
        assert 1 <= replicas <= partitions, f"{kind}: {replicas} replicas for {partitions} partitions"
    assert deployment_running(manifests, ["worker", "timer"])["spec"]["replicas"] == 1


def test_the_api_service_sends_traffic_to_the_api_pods_only(manifests: list[dict[str, Any]]) -> None:
    api = deployment_running(manifests, ["serve", "--host", "0.0.0.0", "--port", "8000"])
    assert api["spec"]["replicas"] >= 2
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    services = list(of_kind(manifests, "Service").values())
    assert len(services) == 1
    selector = services[0]["spec"]["selector"].items()
    for deployment in of_kind(manifests, "Deployment").values():
        selected = selector <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert selected == (deployment is api), deployment["metadata"]["name"]
    ports = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in services[0]["spec"]["ports"]} <= ports


def test_every_config_map_and_secret_a_pod_uses_exists(manifests: list[dict[str, Any]]) -> None:
    defined = {("ConfigMap", n) for n in of_kind(manifests, "ConfigMap")}
    defined |= {("Secret", n) for n in of_kind(manifests, "Secret")}
    for owner, spec in pod_specs(manifests).items():
        for container in spec["containers"]:
            refs = references(container)
            assert refs, f"{owner} gets no configuration"
            missing = refs - defined
            assert not missing, f"{owner} refers to {sorted(missing)}, which no manifest defines"


def test_kubernetes_sets_only_settings_crmflow_reads(manifests: list[dict[str, Any]]) -> None:
    known = settings_environment_names()
    names = set(config_data(manifests))
    for secret in of_kind(manifests, "Secret").values():
        names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for spec in pod_specs(manifests).values():
        names |= {var["name"] for c in spec["containers"] for var in c.get("env", [])}
    assert not names - known, f"{sorted(names - known)} are not settings crmflow reads"
    assert "CRMFLOW_DATABASE_URL" not in config_data(manifests), "the database URL holds a password: a Secret"


def test_secret_placeholders_are_marked_and_an_unreplaced_api_secret_is_refused(
    manifests: list[dict[str, Any]],
) -> None:
    secrets = of_kind(manifests, "Secret").values()
    values = {key: value for secret in secrets for key, value in secret["stringData"].items()}
    assert all("REPLACE-ME" in value for value in values.values()), values
    with pytest.raises(ValidationError, match="api_secret"):
        Settings(api_secret=values["CRMFLOW_API_SECRET"])


def test_only_the_api_is_given_the_api_secret(manifests: list[dict[str, Any]]) -> None:
    holding = {n for n, s in of_kind(manifests, "Secret").items() if "CRMFLOW_API_SECRET" in s["stringData"]}
    api = deployment_running(manifests, ["serve", "--host", "0.0.0.0", "--port", "8000"])
    for owner, spec in pod_specs(manifests).items():
        used = {name for c in spec["containers"] for kind, name in references(c) if kind == "Secret"}
        is_api = owner == f"Deployment/{api['metadata']['name']}"
        assert bool(used & holding) == is_api, owner


def test_a_job_deploys_the_shipped_definitions(manifests: list[dict[str, Any]]) -> None:
    jobs = list(of_kind(manifests, "Job").values())
    assert len(jobs) == 1
    spec = jobs[0]["spec"]["template"]["spec"]
    script = " ".join(as_argv(spec["containers"][0].get("command")) + as_argv(spec["containers"][0]["args"]))
    glob = re.search(r"crmflow process deploy /app/(\S+\*\.yaml)", script)
    assert glob and list(REPO.glob(glob[1]))
    assert spec["restartPolicy"] in ("Never", "OnFailure")


def test_kubectl_renders_the_kustomization() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout) if d}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Job"} <= kinds


# The image.


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_runs_crmflow_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    values = {name: value for name, value in instructions}
    assert values["FROM"] == "python:3.11-slim"
    assert json.loads(values["ENTRYPOINT"]) == ["crmflow"]
    assert values["USER"] not in ("root", "0")
    assert any(name == "RUN" and "pip install ." in value for name, value in instructions)


def test_the_image_is_built_from_files_the_repository_holds() -> None:
    copied = [value.split()[:-1] for name, value in dockerfile_instructions() if name == "COPY"]
    sources = [source for sources in copied for source in sources if not source.startswith("--")]
    assert "pyproject.toml" in sources and "processes" in sources
    assert all((REPO / source).exists() for source in sources), sources
