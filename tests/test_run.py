"""`briefbot run` as a process: token errors, no token in any log line even at DEBUG,
content reload without restart, and the webhook's secret token."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fakebot import FakeBotAPI, fake_bot_api

from .conftest import REPO

TOKEN = "987654321:AAH" + "x7Yq" * 8  # the shape @BotFather issues
SECRET_PART = TOKEN.split(":", 1)[1]
USER = 6001


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with fake_bot_api(token=TOKEN, rate_limits=False) as server:
        yield server


def write_config(tmp_path: Path, content: Path, api_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"content:\n  dir: {content}\n  reload_seconds: 1\n"
        f"storage:\n  path: {tmp_path / 'db.sqlite3'}\n"
        f"telegram:\n  api_base_url: {api_url}\n{extra}",
        encoding="utf-8",
    )
    return path


def env(token: str | None = TOKEN) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    e["PYTHONPATH"] = str(REPO)
    if token is not None:
        e["TELEGRAM_BOT_TOKEN"] = token
    return e


def start(config: Path, token: str | None = TOKEN, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config), *args],
        env=env(token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out + err


def indexed(db: Path, date: str) -> bool:
    """The running bot has indexed the issue of ``date`` (read from its database)."""
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT 1 FROM issues WHERE date = ?", (date,)).fetchone() is not None


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "telegram.token: no bot token"), ("not-a-token", "malformed bot token")],
)
def test_bad_token_is_one_line_and_exit_2(
    tmp_path: Path, bundled: Path, token: str | None, message: str
) -> None:
    config = write_config(tmp_path, bundled, "http://127.0.0.1:9")
    proc = start(config, token)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if token:
        assert token not in err


def test_debug_logs_never_show_the_token_and_content_reloads(
    tmp_path: Path, bundled: Path, api: FakeBotAPI
) -> None:
    config = write_config(tmp_path, bundled, api.url)
    proc = start(config, TOKEN, "--log-level", "DEBUG")
    try:
        api.push_message(USER, "/latest")
        wait_for(lambda: bool(api.messages_to(USER)))
        assert api.messages_to(USER)[0].text.startswith("2025-02-14")
        (bundled / "2025" / "newsflash-202503.md").write_text(
            "## 2025.03.01\n\n2025年03月01日 💡行业快讯\n\n1. 新一期的第一条\n", encoding="utf-8"
        )
        wait_for(lambda: indexed(tmp_path / "db.sqlite3", "2025-03-01"))  # reload_seconds: 1
        api.push_message(USER, "/date 2025-03-01")
        wait_for(lambda: any("新一期的第一条" in m.text for m in api.messages_to(USER)))
    finally:
        code, output = stop(proc)
    assert code == 0, output[-2000:]
    assert "DEBUG" in output and "getUpdates" in output  # it did log at DEBUG
    assert TOKEN not in output and SECRET_PART not in output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_webhook_refuses_requests_without_the_secret(
    tmp_path: Path, bundled: Path, api: FakeBotAPI
) -> None:
    import json

    from fakebot.updates import message_update

    port = free_port()
    extra = (
        "  mode: webhook\n  webhook:\n    listen: 127.0.0.1\n"
        f"    port: {port}\n    url: https://bot.example.com\n    secret_token: s3cret-Token_1\n"
    )
    config = write_config(tmp_path, bundled, api.url, extra)
    proc = start(config)
    url = f"http://127.0.0.1:{port}/telegram"
    try:
        wait_for(lambda: bool(api.webhook.get("url")))
        assert api.webhook["url"] == "https://bot.example.com/telegram"
        body = json.dumps(message_update(USER, "/help")).encode()
        wait_for(lambda: post(url, b"{}", "wrong") == 403)
        assert post(url, body, None) == 403
        assert not api.messages_to(USER)
        assert post(url, body, "s3cret-Token_1") == 200
        wait_for(lambda: bool(api.messages_to(USER)))
    finally:
        code, output = stop(proc)
    assert code == 0, output[-2000:]
    assert TOKEN not in output


def test_webhook_mode_requires_a_secret(tmp_path: Path, bundled: Path) -> None:
    config = write_config(
        tmp_path,
        bundled,
        "http://127.0.0.1:9",
        "  mode: webhook\n  webhook:\n    url: https://x.example\n",
    )
    proc = start(config)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "telegram.webhook.secret_token: required" in err
