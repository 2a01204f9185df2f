"""docker-compose.yml and the Dockerfile stay in step with the code they run (no Docker needed here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot import BotConfig

ROOT = Path(__file__).resolve().parents[1]


def compose_in() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_starts_bot_workers_redis_and_postgres_wired_to_each_other():
    services = compose_in()["services"]
    assert set(services) == {"bot", "worker", "redis", "postgres"}
    bot, worker = services["bot"], services["worker"]
    assert bot["command"] == ["python", "bot.py"] and worker["command"] == ["python", "-m", "workers"]
    assert (ROOT / "workers" / "__main__.py").exists()
    for service in (bot, worker):
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/0", env["MOZART_QUEUE_URL"])
        assert {"redis", "postgres"} <= set(service["depends_on"])
    assert "DISCORD_TOKEN" in bot["environment"] and "DISCORD_TOKEN" not in worker["environment"]
    # the bot reads its configuration from exactly these variables
    config = BotConfig.from_env({k: re.sub(r"\$\{[^}]*\}", "x", str(v)) for k, v in bot["environment"].items()})
    assert config.queue_url == "redis://:x@redis:6379/0" and config.database_url.startswith("postgresql+asyncpg://")
    assert worker["deploy"]["replicas"] >= 2


def test_the_image_holds_every_package_the_bot_and_workers_import():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("composer", "cogs", "db", "workers"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert re.search(r'pip install "\.\[[^\]]*queue[^\]]*postgres[^\]]*\]"', dockerfile)


def test_compose_file_passes_composes_own_validation_when_the_tool_is_here():
    """``docker-compose config`` checks the file against Compose's schema and resolves its merges."""
    import os
    import shutil
    import subprocess

    import pytest

    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed here (apt-get install docker-compose)")
    done = subprocess.run([tool, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True,
                          env={**os.environ, "DISCORD_TOKEN": "x", "POSTGRES_PASSWORD": "p", "REDIS_PASSWORD": "r"},
                          timeout=60)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert resolved["worker"]["environment"]["MOZART_QUEUE_URL"] == resolved["bot"]["environment"]["MOZART_QUEUE_URL"]
    assert resolved["bot"]["environment"]["DISCORD_TOKEN"] == "x"


def test_redis_and_postgres_need_a_password_that_must_be_set():
    """No default password: Compose refuses to start until POSTGRES_PASSWORD and REDIS_PASSWORD are set."""
    text = (ROOT / "docker-compose.yml").read_text()
    services = compose_in()["services"]
    assert ":-" not in text  # no variable falls back to a default (a known password)
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), (name, uses)
    redis = services["redis"]
    assert "--requirepass" in redis["command"]
    assert redis["command"][redis["command"].index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for service in ("bot", "worker"):
        env = services[service]["environment"]
        assert "${REDIS_PASSWORD:?" in env["MOZART_QUEUE_URL"] and "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_scaling_guide_sends_remote_workers_to_redis_over_tls_with_a_password():
    guide = (ROOT / "docs" / "SCALING.md").read_text()
    assert "rediss://" in guide
    assert not re.search(r"redis://queue-host", guide)  # no plain-text, password-less remote Redis
