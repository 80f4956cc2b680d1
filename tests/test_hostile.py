"""Defects found by fuzzing (issue 8), each reproduced: start-up failures, unreadable
files, inputs any user can send, and the CLI and console on hostile arguments."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from telegram.error import Conflict, NetworkError

from bot import replies
from bot.cli import main
from bot.config import Delivery
from bot.db import chats
from bot.db import sync as sync_module
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.delivery.engine import DeliveryEngine, DeliveryError
from fakebot import FakeBotAPI, fake_bot_api

from .botkit import BotUnderTest, make_config
from .conftest import BUNDLED, REPO
from .test_run import TOKEN, env, write_config

MONTH = "2025/newsflash-202502.md"


# -- 2. a start-up failure exits with one line, never hangs -------------------------------


def test_start_up_failure_closes_everything_and_exits_with_one_line(
    tmp_path: Path, bundled: Path
) -> None:
    with fake_bot_api(token=TOKEN, rate_limits=False) as api:
        # post_init fails after the database was opened and the archive indexed.
        api.fail_next("setMyCommands", 400, "Bad Request: commands are broken", times=50)
        config = write_config(tmp_path, bundled, api.url)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("briefbot: cannot start:") and "commands are broken" in last.lower()
    assert "Traceback" not in proc.stderr
    assert TOKEN.split(":")[1] not in proc.stderr + proc.stdout


def test_rejected_token_is_one_line_without_the_token(tmp_path: Path, bundled: Path) -> None:
    other = "123456789:AAH" + "Zz9_" * 8  # well formed, but not the one the server knows
    with fake_bot_api(token=TOKEN, rate_limits=False) as api:
        config = write_config(tmp_path, bundled, api.url)
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            env=env(other),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "briefbot: the token was rejected by Telegram: check telegram.token or TELEGRAM_BOT_TOKEN"
    ]
    assert other.split(":")[1] not in proc.stderr + proc.stdout


# -- 3. one unreadable or vanishing file does not abort check or index --------------------


@pytest.fixture
def unreadable(bundled: Path) -> Path:
    """The bundled archive plus a 'month file' that cannot be read (EIO on read)."""
    os.symlink("/proc/self/mem", bundled / "2025" / "newsflash-202503.md")
    return bundled


async def test_an_unreadable_file_is_a_problem_and_the_rest_is_indexed(
    tmp_path: Path, unreadable: Path
) -> None:
    async with await Archive.open(tmp_path / "u.sqlite3") as archive:
        report = await archive.sync(unreadable)
        assert report.issues == 3
        bad = [p for p in report.problems if p.file.endswith("newsflash-202503.md")]
        assert [p.severity.value for p in bad] == ["error"]
        assert str(bad[0]).endswith("cannot read the file: Input/output error")


async def test_a_file_that_stops_being_readable_keeps_its_last_good_version(
    tmp_path: Path, bundled: Path
) -> None:
    async with await Archive.open(tmp_path / "k.sqlite3") as archive:
        assert (await archive.sync(bundled)).issues == 3
        month = bundled / MONTH
        month.unlink()
        os.symlink("/proc/self/mem", month)
        report = await archive.sync(bundled)
        assert report.issues == 3 and not report.removed
        assert any("keeping the last good version" in p.message for p in report.problems)


async def test_a_file_vanishing_mid_sync_is_not_an_error(
    tmp_path: Path, bundled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = sync_module.content_files

    def with_a_ghost(root: Path) -> list[Path]:
        return [*listed(root), root / "2025" / "newsflash-202512.md"]

    monkeypatch.setattr(sync_module, "content_files", with_a_ghost)
    async with await Archive.open(tmp_path / "v.sqlite3") as archive:
        assert (await archive.sync(bundled)).issues == 3


def test_check_and_index_survive_an_unreadable_file(
    tmp_path: Path, unreadable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"content:\n  dir: {unreadable}\nstorage:\n  path: {tmp_path / 'i.sqlite3'}\n",
        encoding="utf-8",
    )
    assert main(["index", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "3 issues" in out.out and "cannot read the file" in out.out
    assert "Traceback" not in out.err


# -- 10. tracebacks instead of one line ---------------------------------------------------


@pytest.mark.parametrize("offset", ["99999999999999999999", "-1", "²", "1e3"])
def test_search_offset_out_of_range_is_a_usage_error(
    offset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["search", "--offset", offset, "小米"])
    assert exit_.value.code == 2
    assert "must be a whole number" in capsys.readouterr().err


def test_console_survives_hostile_lines(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"content:\n  dir: {BUNDLED}\nstorage:\n  path: {tmp_path / 'c.sqlite3'}\n",
        encoding="utf-8",
    )
    lines = "\n".join(["/list", "²", "9" * 5000, "/list 9999-12", "/channel ²", "/latest"])
    stdin = lines.encode() + b"\n\xff\xfe not utf-8 \x80\n/quit\n"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--config", str(config)],
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    out = proc.stdout.decode()
    assert out.count("you> ") == 8  # every line answered, the last one /quit


# -- 1. a future-dated issue never stops scheduled delivery -------------------------------


class NoSend:
    """The sender is not started in these tests: nothing may be sent."""

    async def send_html(self, chat_id: int, html: str, **kw: object) -> int:
        raise AssertionError("nothing is sent here")

    async def edit_html(self, chat_id: int, message_id: int, html: str) -> None:
        raise AssertionError("nothing is edited here")

    def redact(self, text: str) -> str:
        return text


def _month(*days: str) -> str:
    parts = ["# 2025年2月\n"]
    for day in days:
        parts.append(
            f"## {day}\n\n{day} 💡行业快讯\n\n1. 第一条 {day}\n   https://example.com/{day}\n"
        )
    return "\n".join(parts)


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


async def test_a_future_dated_typo_never_blocks_delivery_and_its_fix_repairs_the_cursor(
    tmp_path: Path, content: Path
) -> None:
    month = content / MONTH
    month.parent.mkdir(parents=True)
    month.write_text(_month("2025.02.14", "2052.02.15"), encoding="utf-8")
    now = _utc("2025-02-16 02:00")
    config = Delivery(times=(dt.time(8, 30),), timezone="Asia/Shanghai", max_backlog=3)
    async with await Archive.open(tmp_path / "f.sqlite3") as archive:
        await archive.sync(content)
        await chats.subscribe(archive.db, ChatInfo(1, "private"), now=_utc("2025-02-10 00:00"))
        engine = DeliveryEngine(archive, NoSend(), config, clock=lambda: now)
        await engine.tick(now)
        rows = await archive.db.rows("SELECT issue FROM outbox WHERE part = 0")
        assert rows == [("2025-02-14",)]  # the typo is never queued
        record = await chats.get(archive.db, 1)
        assert record is not None and record.last_issue == dt.date(2025, 2, 14)
        # An admin broadcast with no date means the newest deliverable issue, not the typo;
        # naming the typo is refused with a reason.
        assert (await engine.broadcast_now(dry_run=True)).issue == dt.date(2025, 2, 14)
        with pytest.raises(DeliveryError, match="dated in the future"):
            await engine.broadcast_now(dt.date(2052, 2, 15))
        # A cursor already pushed to 2052 by an older release is repaired, and the fixed
        # issue goes out at the next slot.
        async with archive.db.transaction():
            await archive.db.execute("UPDATE chats SET last_issue = '2052-02-15'")
        month.write_text(_month("2025.02.14", "2025.02.20"), encoding="utf-8")
        await archive.sync(content)
        later = _utc("2025-02-21 02:00")
        engine.planner.clock = lambda: later
        await engine.tick(later)
        rows = await archive.db.rows("SELECT issue FROM outbox WHERE part = 0 ORDER BY id")
        assert rows == [("2025-02-14",), ("2025-02-20",)]


def test_check_reports_a_future_dated_issue(
    tmp_path: Path, content: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (content / "misc.md").write_text(_month("2025.02.14", "2052.02.15"), encoding="utf-8")
    assert main(["check", str(content)]) == 1
    out = capsys.readouterr().out
    assert "misc.md:" in out and "2052-02-15 is dated after today" in out


# -- 7. a retried CLI broadcast sends what is pending -------------------------------------


def test_cli_broadcast_rejected_token_then_retry_sends_what_an_earlier_run_left(
    tmp_path: Path,
    bundled: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    with fake_bot_api(token=TOKEN) as api:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"content:\n  dir: {bundled}\nstorage:\n  path: {tmp_path / 'db.sqlite3'}\n"
            f"telegram:\n  api_base_url: {api.url}\n",
            encoding="utf-8",
        )

        async def seed() -> None:
            async with await Archive.open(tmp_path / "db.sqlite3") as archive:
                await archive.sync(bundled)
                for cid in range(1, 6):
                    await chats.subscribe(archive.db, ChatInfo(cid, "private"))
                # An earlier run that queued the issue for chats 1-3 and was stopped.
                engine = DeliveryEngine(archive, NoSend(), Delivery())
                await engine.broadcast_now(dt.date(2025, 2, 14), "cli")
                await chats.subscribe(archive.db, ChatInfo(6, "private"))

        asyncio.run(seed())
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456789:AAH" + "Zz9_" * 8)
        assert main(["broadcast", "--config", str(config)]) == 2
        out, err = capsys.readouterr()
        assert "the token was rejected by Telegram" in err and "Zz9_" not in out + err
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        assert main(["broadcast", "--config", str(config)]) == 0
        out, _ = capsys.readouterr()
        assert "posting 1 messages to 1 chats" in out
        assert "also sending 5 messages pending from an earlier run" in out
        assert sorted(m.chat_id for m in api.sent) == [1, 2, 3, 4, 5, 6]


# -- 6. inputs any user can send; polling trouble is a warning ----------------------------


async def test_hostile_user_input_gets_answers_and_bothers_no_admin(
    tmp_path: Path, bundled: Path, open_api: FakeBotAPI
) -> None:
    async with BotUnderTest(open_api, make_config(tmp_path, bundled, open_api)) as b:
        for text in ("/list 9999-12", "/channel ²", "/time ²²:00", "/date " + "9" * 5000):
            (answer,) = await b.say(5003, text)
            assert "出了点问题" not in answer.text
        for offset in ("²", "18446744073709551616", "9" * 5000):
            await b.inline("小米", offset)
        (page,) = await b.say(5003, "/find 小米")
        await b.press(5003, page, "f:18446744073709551616:小米")
    assert open_api.messages_to(42) == []  # no admin report


async def test_network_errors_are_deduplicated_warnings_and_bugs_are_rate_limited(
    tmp_path: Path,
    bundled: Path,
    open_api: FakeBotAPI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom(ctx: replies.Ctx) -> replies.Reply:
        raise RuntimeError("a real bug")

    monkeypatch.setattr(replies, "latest", boom)
    async with BotUnderTest(open_api, make_config(tmp_path, bundled, open_api)) as b:
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                await b.app.process_error(None, Conflict("terminated by other getUpdates request"))
            await b.app.process_error(None, NetworkError("Bad Gateway"))
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if "Conflict" in w]) == 1
        assert len([w for w in warnings if "Bad Gateway" in w]) == 1
        assert open_api.messages_to(42) == []
        for chat in (7001, 7002, 7003):
            await b.say(chat, "/latest")
    (report,) = open_api.messages_to(42)  # one report a minute, not three
    assert "a real bug" in report.text


# -- 9. the webhook checks the secret before reading a body -------------------------------


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _post_big(url: str, size: int, secret: str | None) -> int:
    """POST ``size`` bytes; the server may answer and close before reading them all."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    headers = {"Content-Type": "application/json", "Content-Length": str(size)}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    try:
        conn.putrequest("POST", parts.path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        chunk = b" " * 65536
        try:
            for _ in range(size // len(chunk)):
                conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused unread: what we want
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.xdist_group("timing")  # times the stop of a child process: see pyproject
def test_webhook_refuses_big_unauthenticated_bodies_unread(tmp_path: Path, bundled: Path) -> None:
    from .test_run import free_port, start, stop, wait_for

    with fake_bot_api(token=TOKEN, rate_limits=False) as api:
        port = free_port()
        extra = (
            "  mode: webhook\n  webhook:\n"
            f"    port: {port}\n    url: https://bot.example.com\n    secret_token: s3cret-Token_1\n"
        )
        proc = start(write_config(tmp_path, bundled, api.url, extra))
        url = f"http://127.0.0.1:{port}/telegram"
        try:
            wait_for(lambda: bool(api.webhook.get("url")))
            time.sleep(0.5)
            before = _rss_kb(proc.pid)
            for _ in range(2):  # PTB's server held each body in memory: +90 MB for 50 MB
                assert _post_big(url, 30 * 1024 * 1024, None) == 403
            assert _post_big(url, 3 * 1024 * 1024, "s3cret-Token_1") == 413
            grown_mb = (_rss_kb(proc.pid) - before) / 1024
        finally:
            asked = time.monotonic()
            code, output = stop(proc)
            stopped = time.monotonic() - asked
    assert code == 0, output[-2000:]
    assert grown_mb < 20, f"RSS grew {grown_mb:.0f} MB"
    # Nothing is left reading the strangers' bodies: aiohttp drained them for up to 10 s
    # after the answer ("lingering"), and SIGTERM waited for that.
    assert stopped < 5, f"SIGTERM took {stopped:.1f} s"


# -- 10. another application's database, damaged pages, index --rebuild ------------------


def _config(tmp_path: Path, content: Path, db: Path) -> Path:
    path = tmp_path / "db.yaml"
    path.write_text(f"content:\n  dir: {content}\nstorage:\n  path: {db}\n", encoding="utf-8")
    return path


def test_another_applications_database_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance REAL)")
    assert main(["index", "--config", str(_config(tmp_path, BUNDLED, other))]) == 1
    err = capsys.readouterr().err
    assert "another application's SQLite database" in err and "Traceback" not in err
    with sqlite3.connect(other) as raw:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["accounts"]


def _damage_items(db: Path) -> None:
    """Overwrite the first pages of the items table's b-tree with garbage."""
    import sqlite3

    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        root = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'items'").fetchone()[0]
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))


def test_damaged_pages_get_one_line_and_index_rebuild_repairs_keeping_subscribers(
    tmp_path: Path, bundled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    db = tmp_path / "d.sqlite3"
    config = str(_config(tmp_path, bundled, db))

    async def seed() -> None:
        async with await Archive.open(db) as archive:
            await archive.sync(bundled)
            for cid in (1, 2, 3):
                await chats.subscribe(archive.db, ChatInfo(cid, "private"))

    asyncio.run(seed())
    _damage_items(db)
    assert main(["show", "2025-02-14", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and "briefbot index --rebuild" in err and "Traceback" not in err
    assert main(["index", "--rebuild", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "rebuilt: 3 issues" in out and "chats 3" in out
    assert main(["show", "2025-02-14", "--config", config]) == 0
    assert "2025" in capsys.readouterr().out
    assert (tmp_path / "d.sqlite3.damaged").exists()


# -- 11. a linked folder is indexed, not silently skipped ---------------------------------


async def test_a_symlinked_subdirectory_is_indexed_and_a_loop_is_harmless(
    tmp_path: Path, content: Path
) -> None:
    elsewhere = tmp_path / "elsewhere" / "2025"
    elsewhere.mkdir(parents=True)
    (elsewhere / "newsflash-202502.md").write_text(
        (BUNDLED / MONTH).read_text(encoding="utf-8"), encoding="utf-8"
    )
    os.symlink(elsewhere, content / "2025")
    os.symlink(content, content / "2025-loop")  # a link back up the tree
    async with await Archive.open(tmp_path / "s.sqlite3") as archive:
        report = await archive.sync(content)
    assert report.issues == 3


def test_an_item_with_no_text_is_an_error_so_a_stub_is_never_ready() -> None:
    from bot.core.content import parse_text

    result = parse_text("x.md", "## 2025.02.14\n\n2025年02月14日 💡行业快讯\n\n1. \n")
    [problem] = [p for p in result.problems if "has no text" in p.message]
    assert problem.severity.value == "error" and problem.line == 5
