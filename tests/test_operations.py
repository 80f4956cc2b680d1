"""Operating briefbot: `briefbot backup` (a consistent copy taken mid-broadcast, restored),
JSON log lines (`logging.format: json`, `--log-format json`), and `briefbot doctor`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.cli import main
from bot.db.archive import Archive
from bot.db.backup import BackupError, backup, backup_sync
from bot.doctor import check_disk, run_checks
from bot.logs import JsonFormatter, forget_secrets, register_secret, setup_logging
from fakebot import FakeBotAPI, fake_bot_api

from .conftest import REPO
from .test_delivery import (
    D13,
    SCALE,
    Limits,
    _archive,
    _opened,
    engine,
    finish,
    parts,
    seed,
    texts_to,
)
from .test_run import TOKEN, env

SECRET_PART = TOKEN.split(":", 1)[1]


@pytest.fixture(autouse=True)
async def _close_transports() -> AsyncIterator[None]:
    """engine() opens an aiohttp transport that test_delivery's own autouse fixture closes;
    that fixture does not reach this module (left open, each was an "Unclosed client
    session" at the end of the run)."""
    yield
    while _opened:
        await _opened.pop().close()


@pytest.fixture
async def archive(store: Archive, content: Path) -> Archive:
    (content / "2025").mkdir()
    (content / "2025" / "newsflash-202502.md").write_text(_archive(), encoding="utf-8")
    await store.sync(content)
    return store


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with fake_bot_api(rate_scale=SCALE) as server:
        yield server


def confirmed(path: Path) -> set[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        return set(conn.execute("SELECT chat_id, part FROM outbox WHERE status = 'sent'"))
    finally:
        conn.close()


# -- backup -------------------------------------------------------------------------------


async def test_backup_mid_broadcast_is_consistent_and_resumes(
    archive: Archive, fake: FakeBotAPI, tmp_path: Path
) -> None:
    await seed(archive, [(i, "private") for i in range(1, 61)])
    slow = Limits(per_second=40, burst=1, private_per_second=SCALE, in_flight=4)
    async with fake.bot() as bot:
        eng = engine(archive, bot, slow)
        await eng.start()
        plan = await eng.broadcast_now(D13)
        await fake.wait_sent_async(30, timeout=10)
        copy = tmp_path / "backup.sqlite3"
        summary = await backup(archive.db.path, copy)  # while the sender writes
        await fake.wait_sent_async(len(fake.sent) + 10, timeout=10)  # the bot goes on
        await eng.stop()
    before = len(fake.sent)
    in_copy = confirmed(copy)
    assert 0 < len(in_copy) < 120 and summary.outbox["sent"] == len(in_copy)
    assert summary.outbox["sent"] + summary.outbox["pending"] == 120 and summary.chats == 60
    assert summary.issues == 5 and summary.size == copy.stat().st_size
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT count(*) FROM delivery_lease").fetchone() == (0,)
    finally:
        conn.close()
    assert not list(tmp_path.glob(".backup.sqlite3.*"))  # no temporary file left behind

    # The restore: the bot stopped, the copy put back, the bot started on it.
    restored = await Archive.open(copy)
    try:
        async with fake.bot() as bot:
            eng = engine(restored, bot)
            await eng.start()
            report = await finish(eng, plan.broadcast_id)
            await eng.stop()
    finally:
        await restored.close()
    assert report.sent == 120 and report.pending == 0
    expected = await parts(archive, D13)
    for cid in range(1, 61):
        had = sorted(part for chat, part in in_copy if chat == cid)
        resumed = [expected.index(m.params["text"]) for m in fake.sent[before:] if m.chat_id == cid]
        # The copy's confirmed parts plus what the restored bot sent: the whole issue, in
        # order, and nothing the copy had confirmed went again. (What was confirmed only
        # after the copy was taken goes out again: the documented cost of a restore.)
        assert had + resumed == list(range(len(expected))), cid
        assert texts_to(fake, cid)[: len(had)] == expected[: len(had)]


def test_backup_refuses_to_overwrite_and_names_the_problem(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    with pytest.raises(BackupError, match="no database at"):
        backup_sync(db, tmp_path / "b.sqlite3")
    sqlite3.connect(db).close()
    target = tmp_path / "b.sqlite3"
    target.write_text("keep me")
    with pytest.raises(BackupError, match="exists; choose another name or add --force"):
        backup_sync(db, target)
    assert target.read_text() == "keep me"
    with pytest.raises(BackupError, match="is the database itself"):
        backup_sync(db, db)
    with pytest.raises(BackupError, match="no such folder"):
        backup_sync(db, tmp_path / "missing" / "b.sqlite3")
    assert backup_sync(db, target, force=True).issues == 0
    assert target.read_bytes().startswith(b"SQLite format 3")


def test_backup_command(capsys: pytest.CaptureFixture[str], tmp_path: Path, bundled: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"content:\n  dir: {bundled}\nstorage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    assert main(["index", "--config", str(cfg)]) == 0
    capsys.readouterr()
    target = tmp_path / "copy.sqlite3"
    assert main(["backup", str(target), "--config", str(cfg)]) == 0
    out, _ = capsys.readouterr()
    assert f"{target}: " in out and "3 issues, 31 items, 0 chats, outbox empty" in out
    assert main(["backup", str(target), "--config", str(cfg)]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("briefbot: ") and "--force" in err and len(err.splitlines()) == 1
    assert main(["backup", str(target), "--force", "--config", str(cfg)]) == 0


# -- JSON logs ------------------------------------------------------------------------------


def _record(msg: str, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("bot.x", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    ("record", "want"),
    [
        (_record("plain %s", "text"), {"msg": "plain text"}),
        (_record("token %s", TOKEN), {"msg": "token <token>"}),
        (_record("half %s", SECRET_PART), {"msg": "half <token>"}),
        (_record("url https://u:pw@h/x"), {"msg": "url https://***@h/x"}),
        (_record("中文 ok"), {"msg": "中文 ok"}),
        (_record("extra", chat=5, why=f"t={TOKEN}"), {"chat": 5, "why": "t=<token>"}),
    ],
)
def test_json_lines_are_objects_and_redacted(
    record: logging.LogRecord, want: dict[str, Any]
) -> None:
    line = JsonFormatter([TOKEN]).format(record)
    data = json.loads(line)
    assert {"ts", "level", "logger", "msg"} <= set(data) and data["level"] == "WARNING"
    assert data["logger"] == "bot.x" and data["ts"].endswith("Z")
    assert want.items() <= data.items()
    assert TOKEN not in line and SECRET_PART not in line and "\n" not in line


def test_json_traceback_is_one_field_without_the_token() -> None:
    register_secret(TOKEN)
    try:
        line = JsonFormatter().format(_record("boom", exc=True))
    finally:
        forget_secrets()
    data = json.loads(line)
    assert "Traceback" in data["exc"] and "RuntimeError: failed with <token>" in data["exc"]
    assert SECRET_PART not in line


def test_setup_logging_json_makes_every_line_json(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", [TOKEN], "json")
        logging.getLogger("telegram.ext").info("polling %s", f"https://x/bot{TOKEN}/getMe")
        logging.getLogger("bot.delivery").exception("no", exc_info=ValueError("v"))
        _, err = capsys.readouterr()
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        forget_secrets()
    lines = [json.loads(line) for line in err.splitlines()]
    assert [x["level"] for x in lines] == ["INFO", "ERROR"]
    assert lines[0]["msg"] == "polling https://x/bot<token>/getMe" and "exc" in lines[1]


def _cli(*argv: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        env=env(token),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_log_format_flag_and_config_key_make_cli_errors_json(tmp_path: Path) -> None:
    # The flag, before any command, even when there is no config to read it from.
    done = _cli("--log-format", "json", "show", "latest", "--config", str(tmp_path / "no.yaml"))
    [line] = done.stderr.splitlines()
    data = json.loads(line)
    assert done.returncode == 2 and (data["level"], data["logger"]) == ("ERROR", "briefbot")
    assert data["msg"].endswith("config file not found (copy config.example.yaml)")
    # The config key; a rejected token shape never shows the token.
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"logging:\n  format: json\nstorage:\n  path: {tmp_path / 'db'}\n")
    bad = "12345:" + SECRET_PART[:10]
    done = _cli("run", "--config", str(cfg), token=bad)
    [line] = done.stderr.splitlines()
    assert done.returncode == 2 and "malformed bot token" in json.loads(line)["msg"]
    assert bad not in done.stderr
    # Notes on stderr (check's summary) are JSON lines too; stdout is unchanged.
    done = _cli("--log-format", "json", "check", str(REPO / "content"))
    assert done.returncode == 0 and json.loads(done.stderr)["msg"].endswith("0 warnings")
    done = _cli("--log-format", "text", "check", str(REPO / "content"))
    assert not done.stderr.startswith("{")


# -- doctor -------------------------------------------------------------------------------


def _config(tmp_path: Path, content: Path, api_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"content:\n  dir: {content}\nstorage:\n  path: {tmp_path / 'data' / 'db.sqlite3'}\n"
        f"telegram:\n  api_base_url: {api_url}\n{extra}",
        encoding="utf-8",
    )
    return path


def doctor(config: Path, **kw: Any) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = asyncio.run(run_checks(str(config), out, **kw))
    return code, out.getvalue().splitlines()


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with fake_bot_api(token=TOKEN, rate_limits=False) as server:
        yield server


def by_check(lines: list[str]) -> dict[str, str]:
    return {line.split()[1].rstrip(":"): line.split()[0] for line in lines}


def test_doctor_all_well(
    tmp_path: Path, bundled: Path, api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    code, lines = doctor(_config(tmp_path, bundled, api.url), today=dt.date(2025, 2, 15))
    assert code == 0, lines
    assert by_check(lines) == dict.fromkeys(
        ["config", "token", "content", "database", "disk"], "OK"
    )
    assert any("token: @" in line and api.url in line for line in lines)
    assert any("database:" in line and "will be created" in line for line in lines)
    assert all(TOKEN not in line and SECRET_PART not in line for line in lines)
    # Weeks later with no new issue: stale content is a warning, not a failure.
    code, lines = doctor(_config(tmp_path, bundled, api.url), today=dt.date(2025, 3, 15))
    assert code == 0 and by_check(lines)["content"] == "WARN"
    assert "2025-02-14, is 29 days old (ops.stale_days: 3)" in "\n".join(lines)


def test_doctor_rejected_token_fails_without_printing_it(
    tmp_path: Path, bundled: Path, api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "123456789:AAF" + "q1Zw" * 8  # well formed, not the fake's
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", other)
    cfg = _config(tmp_path, bundled, api.url)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "doctor", "--config", str(cfg)],
        env=env(other),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    token_line = next(x for x in done.stdout.splitlines() if " token: " in x)
    assert token_line.startswith("FAIL  token: rejected by") and "@BotFather" in token_line
    output = done.stdout + done.stderr
    assert other not in output and other.split(":")[1] not in output and "Traceback" not in output
    assert any(c.method == "getMe" for c in api.calls())


def test_doctor_fails_on_a_bad_config_a_corrupt_or_newer_database(
    tmp_path: Path, bundled: Path, api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    bad = tmp_path / "bad.yaml"
    bad.write_text("delivery:\n  timezone: Asia/Shanghia\n")
    code, lines = doctor(bad)
    assert code == 1 and len(lines) == 1  # nothing else can be checked without a config
    assert lines[0].startswith("FAIL  config: delivery.timezone: unknown time zone")

    cfg = _config(tmp_path, bundled, api.url)
    db = tmp_path / "data" / "db.sqlite3"
    db.parent.mkdir()
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    code, lines = doctor(cfg)
    assert code == 1 and by_check(lines)["database"] == "FAIL"
    assert "restore a backup" in "\n".join(lines)

    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    code, lines = doctor(cfg)
    assert code == 1 and "schema 999, newer than this release" in "\n".join(lines)

    db.unlink()
    if os.geteuid() == 0:
        return  # root may write anywhere: the permission cases cannot be shown
    (tmp_path / "data").chmod(0o500)  # the database cannot be created in this folder
    try:
        code, lines = doctor(cfg)
    finally:
        (tmp_path / "data").chmod(0o700)
    assert code == 1 and "its folder is not writable" in "\n".join(lines)
    conn = sqlite3.connect(db)
    conn.close()
    db.chmod(0o400)  # exists, read-only
    code, lines = doctor(cfg)
    assert code == 1 and "is not writable by this user" in "\n".join(lines)


@pytest.mark.parametrize(
    ("free_mb", "level"), [(5000, "OK"), (99, "WARN"), (30, "WARN"), (24, "FAIL"), (0, "FAIL")]
)
def test_doctor_disk_space(tmp_path: Path, free_mb: int, level: str) -> None:
    from bot.config import parse_config

    config = parse_config({"storage": {"path": str(tmp_path / "d" / "db")}}, tmp_path)
    check = check_disk(config, lambda _p: SimpleNamespace(free=free_mb * 1024 * 1024))
    assert check.level == level and f"{free_mb} MB free" in check.detail


def test_doctor_unwritable_database_fails(
    tmp_path: Path, bundled: Path, api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root every file is writable, so the permission answer is simulated.
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    cfg = _config(tmp_path, bundled, api.url)
    db = tmp_path / "data" / "db.sqlite3"
    db.parent.mkdir()
    sqlite3.connect(db).close()
    real = os.access
    monkeypatch.setattr(
        "bot.doctor.os.access", lambda p, mode: False if Path(p) == db else real(p, mode)
    )
    code, lines = doctor(cfg)
    assert code == 1 and "is not writable by this user / fix the owner" in "\n".join(lines)
    monkeypatch.setattr(
        "bot.doctor.os.access", lambda p, mode: False if Path(p) == db.parent else real(p, mode)
    )
    db.unlink()
    code, lines = doctor(cfg)
    assert code == 1 and "its folder is not writable" in "\n".join(lines)
