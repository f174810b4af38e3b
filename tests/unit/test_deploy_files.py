"""docker-compose.yml, Dockerfile and Procfile only run commands, options and variables that exist."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from aep_activator.config.settings import Settings
from aep_activator.workers.cli import main

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = ("simulator", "worker", "beat", "flower", "api")
KNOWN_VARS = {name.upper() for name in Settings.model_fields} | {"FLOWER_BASIC_AUTH"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def entry_point(script: str) -> click.Command:
    """The object a ``[project.scripts]`` entry of pyproject.toml names."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert script in scripts, f"{script} is not a [project.scripts] entry"
    module, _, attr = scripts[script].partition(":")
    target = getattr(__import__(module, fromlist=[attr]), attr)
    assert isinstance(target, click.Command)
    return target


def check_cli_command(argv: list[str]) -> click.Command:
    """Resolve ``aep-activator <sub> [options]`` against the click group; fail on any unknown option."""
    assert argv[0] == "aep-activator", argv
    group = entry_point(argv[0])
    assert group is main
    assert isinstance(group, click.Group)
    ctx = click.Context(group)
    command = group.get_command(ctx, argv[1])
    assert command is not None, f"no subcommand {argv[1]!r}"
    options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    tokens = iter(argv[2:])
    for token in tokens:
        assert token.startswith("-"), f"{argv}: unexpected argument {token!r}"
        name, has_value, _ = token.partition("=")
        assert name in options, f"{argv}: {argv[1]} has no option {name}"
        if not options[name].is_flag and not has_value:
            next(tokens)  # the option's value
    return command


def test_the_command_checker_rejects_unknown_subcommands_and_options() -> None:
    with pytest.raises(AssertionError, match="has no option --bind"):
        check_cli_command(["aep-activator", "flower", "--bind", "0.0.0.0"])
    with pytest.raises(AssertionError, match="no subcommand"):
        check_cli_command(["aep-activator", "scheduler"])


def test_compose_has_the_app_services_redis_and_an_optional_prometheus(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"redis", "prometheus", *APP_SERVICES}
    assert services(compose)["prometheus"]["profiles"] == ["monitoring"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_service_runs_a_real_cli_command_built_from_the_dockerfile(
    compose: dict[str, Any], name: str
) -> None:
    service = services(compose)[name]
    assert service["build"] == "."
    assert service["env_file"] == ".env"
    check_cli_command(service["command"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_service_sets_only_known_variables_and_the_compose_redis(
    compose: dict[str, Any], name: str
) -> None:
    env = services(compose)[name]["environment"]
    assert set(env) <= KNOWN_VARS, set(env) - KNOWN_VARS
    assert env["REDIS_URL"] == "redis://redis:6379/0"


def test_redis_keeps_an_append_only_file_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert redis["image"] == "redis:7"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "--hash-max-listpack-value 512" in command  # run records stay listpacks (BENCHMARKS.md, stage 2)
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_flower_listens_on_all_container_interfaces_but_publishes_on_host_loopback_only(
    compose: dict[str, Any]
) -> None:
    flower = services(compose)["flower"]
    assert flower["command"][-2:] == ["--address", "0.0.0.0"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert "--insecure-no-auth" not in flower["command"]
    assert flower["environment"]["FLOWER_DB"].startswith("/app/.flower/")
    assert "flower-data:/app/.flower" in flower["volumes"]


def test_only_flower_the_api_and_prometheus_publish_ports_and_only_on_host_loopback(compose: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in services(compose).items() if "ports" in s}
    assert published == {"flower": ["127.0.0.1:5555:5555"], "api": ["127.0.0.1:8000:8000"],
                         "prometheus": ["127.0.0.1:9090:9090"]}  # fmt: skip


def test_the_api_binds_all_container_interfaces_takes_its_keys_from_the_environment_and_has_a_health_check(
    compose: dict[str, Any],
) -> None:
    api = services(compose)["api"]
    assert api["command"] == ["aep-activator", "api", "--address", "0.0.0.0"]
    assert "--insecure-no-auth" not in api["command"]
    assert api["environment"]["API_KEYS"] == "${API_KEYS:-}"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_prometheus_mounts_the_shipped_rules_and_scrapes_the_api_with_a_key_file(compose: dict[str, Any]) -> None:
    volumes = services(compose)["prometheus"]["volumes"]
    for path in ("deploy/prometheus/prometheus.yml", "deploy/prometheus/alerts.yml"):
        assert any(v.startswith(f"./{path}:") for v in volumes) and (REPO / path).exists()
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    assert job["authorization"]["credentials_file"] == "/etc/prometheus/api-key"


def test_the_simulator_binds_all_interfaces_so_the_worker_can_reach_it(compose: dict[str, Any]) -> None:
    sim = services(compose)["simulator"]
    assert sim["command"][2:] == ["--host", "0.0.0.0", "--port", "8080"]
    assert sim["environment"]["AEP_BASE_URL"] == "http://simulator:8080"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("worker", {"redis": "service_healthy", "simulator": "service_started"}),
        ("beat", {"redis": "service_healthy"}),
        ("flower", {"redis": "service_healthy"}),
        ("api", {"redis": "service_healthy"}),
    ],
)
def test_services_wait_for_a_healthy_redis(compose: dict[str, Any], name: str, expected: dict[str, str]) -> None:
    depends = services(compose)[name]["depends_on"]
    assert {dep: spec["condition"] for dep, spec in depends.items()} == expected


def test_the_dockerfile_installs_the_package_on_python_3_11_slim_without_copying_secrets() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "\nFROM python:3.11-slim\n" in text
    assert "pip install ." in text
    copied = [line.split()[1] for line in text.splitlines() if line.startswith("COPY")]
    assert ".env" not in copied and "." not in copied
    for path in copied:
        assert (REPO / path).exists(), path
    assert "\nUSER app\n" in text


def procfile() -> dict[str, str]:
    lines = [ln for ln in (REPO / "Procfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return dict(ln.split(":", 1) for ln in lines)


def test_the_procfile_has_a_line_per_process() -> None:
    assert set(procfile()) == {"worker", "beat", "flower", "simulator", "api"}


@pytest.mark.parametrize("name", ["worker", "beat", "flower", "simulator", "api"])
def test_each_procfile_line_runs_a_real_cli_command(name: str) -> None:
    argv = shlex.split(procfile()[name])
    assert argv[1] == name
    check_cli_command(argv)
