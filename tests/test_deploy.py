"""deploy/: the container's command and the systemd unit's ExecStart are exactly a
`briefbot ...` command line that works (run here against the fake Bot API), the unit
passes `systemd-analyze verify` where it is installed, the shipped config is valid."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import load_config
from fakebot import FakeBotAPI

from .conftest import REPO
from .test_run import TOKEN, api, env, stop, wait_for, write_config

__all__ = ["api"]

DEPLOY = REPO / "deploy"


def dockerfile_argv() -> list[str]:
    """ENTRYPOINT + CMD of deploy/Dockerfile (exec form: JSON arrays)."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    entry = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.M)
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.M)
    assert entry and cmd, "ENTRYPOINT and CMD in exec form"
    return [*json.loads(entry.group(1)), *json.loads(cmd.group(1))]


def unit_argv() -> list[str]:
    text = (DEPLOY / "briefbot.service").read_text(encoding="utf-8")
    [line] = re.findall(r"^ExecStart=(.*)$", text, re.M)
    argv = shlex.split(line)
    assert Path(argv[0]).name == "briefbot"
    return ["briefbot", *argv[1:]]


def unit_settings() -> dict[str, str]:
    text = (DEPLOY / "briefbot.service").read_text(encoding="utf-8")
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.M))


@pytest.mark.parametrize("argv", [dockerfile_argv(), unit_argv()], ids=["docker", "systemd"])
def test_the_command_line_is_a_briefbot_run(argv: list[str]) -> None:
    assert argv[0] == "briefbot"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and args.config
    # The same argv as a process: the options parse (argparse's --help exits 0).
    done = subprocess.run(
        [sys.executable, "-m", "bot", *argv[1:], "--help"],
        env=env(None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "usage: briefbot run" in done.stdout


@pytest.mark.parametrize("argv", [dockerfile_argv(), unit_argv()], ids=["docker", "systemd"])
def test_the_same_command_runs_the_bot_and_stops_on_sigterm(
    tmp_path: Path, bundled: Path, api: FakeBotAPI, argv: list[str]
) -> None:
    # Only the config file's path differs: the container's and the unit's do not exist here.
    config = write_config(tmp_path, bundled, api.url, "ops:\n  listen: ''\n")
    at = argv.index("--config") + 1
    run = [*argv[1:at], str(config), *argv[at + 1 :]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *run],
        env=env(TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        api.push_message(6001, "/help")
        wait_for(lambda: bool(api.messages_to(6001)), timeout=30)
    finally:
        code, output = stop(proc)
    assert code == 0, output[-2000:]
    assert TOKEN not in output


def test_the_unit_is_hardened_as_documented() -> None:
    s = unit_settings()
    assert s["DynamicUser"] == "yes" and s["StateDirectory"] == "briefbot"
    assert s["ProtectSystem"] == "strict" and s["Restart"] == "on-failure"
    assert "TELEGRAM_BOT_TOKEN" not in s and s["EnvironmentFile"].startswith("/etc/")
    # The shipped config keeps the database in the StateDirectory (adapted as it says).
    assert "/var/lib/briefbot/" in (DEPLOY / "config.yaml").read_text(encoding="utf-8")


def test_the_dockerfile_runs_unprivileged_with_a_volume_and_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER briefbot$", text, re.M) and 'VOLUME ["/data"]' in text
    assert "http://127.0.0.1:9464/readyz" in text
    assert not re.search(r"^(ENV|ARG)\b.*TELEGRAM_BOT_TOKEN", text, re.M)  # never baked in
    compose = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "./config.yaml:/config/config.yaml:ro" in compose and "briefbot-data:/data" in compose


def test_the_shipped_config_is_valid_and_matches_the_image() -> None:
    config = load_config(DEPLOY / "config.yaml")
    assert str(config.storage_path) == "/data/briefbot.sqlite3"
    assert str(config.content_dir) == "/content"
    assert config.ops.listen == "127.0.0.1:9464" and config.log_format == "json"
    assert not config.telegram.token  # the token comes from the environment


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_finds_nothing_wrong(tmp_path: Path) -> None:
    unit = tmp_path / "briefbot.service"
    shutil.copy(DEPLOY / "briefbot.service", unit)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # The binary is not installed at /opt/briefbot here; anything else is a real problem.
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "/opt/briefbot/.venv/bin/briefbot" not in line
    ]
    assert not problems, problems
