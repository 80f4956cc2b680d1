"""``briefbot subscribers import|export``: every bad-row kind as FILE:LINE, nothing written
on any bad row, a chat's /stop winning over a list, idempotence and the CSV round trip."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.subscribers import NOW, Row, parse_subscribers
from bot.db import chats
from bot.db.chats import ChatInfo
from bot.db.database import Database
from bot.db.importer import import_rows
from bot.delivery import audience
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config

WHEN = dt.datetime(2025, 2, 14, 3, 0, tzinfo=dt.UTC)


def parse(text: str, name: str = "list.csv") -> tuple[list[Row], list[str]]:
    rows, errors = parse_subscribers(name, text.encode())
    return rows, [str(e) for e in errors]


# -- parsing (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("123", Row(1, 123, "private")),
        ("123,08:00", Row(1, 123, "private", "08:00")),
        ("123,8:05,EN", Row(1, 123, "private", "08:05", "en")),
        ("123,zh,now", Row(1, 123, "private", NOW, "zh")),
        ("-1001234567890,channel", Row(1, -1001234567890, "channel")),
        ("-42,group,,en", Row(1, -42, "group", None, "en")),
        (
            "chat_id,type,time,lang\n-100123,supergroup,23:59,zh",
            Row(2, -100123, "supergroup", "23:59", "zh"),
        ),
        ("chat_id,lang\n\n# a comment\n5,en", Row(4, 5, "private", None, "en")),
        ('{"chat_id": 7, "time": "07:30"}', Row(1, 7, "private", "07:30")),
        (
            '{"chat_id": -9, "type": "group", "lang": "en", "time": null}',
            Row(1, -9, "group", None, "en"),
        ),
        ('\n{"chat_id": "11"}', Row(2, 11, "private")),
    ],
)
def test_good_rows(text: str, want: Row) -> None:
    assert parse(text) == ([want], [])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("abc", "list.csv:1: chat_id must be a whole number"),
        ("0", "list.csv:1: chat_id 0 is not a Telegram chat id"),
        (
            "99999999999999999999",
            "list.csv:1: chat_id 99999999999999999999 is not a Telegram chat id",
        ),
        ("-5", "list.csv:1: chat -5 is a group or channel: give its type"),
        ("5,group", "list.csv:1: a group chat's id is negative, got 5"),
        ("-5,private", "list.csv:1: a private chat's id is positive, got -5"),
        ("5,24:00", "list.csv:1: time must be HH:MM (00:00 to 23:59) or now, got '24:00'"),
        ("5,12:60", "list.csv:1: time must be HH:MM"),
        ("5,fr", "list.csv:1: unexpected value 'fr'"),
        ("5,zh,en", "list.csv:1: two values for lang"),
        ("5\n6\n5,en", "list.csv:3: chat 5 is already on line 1"),
        ("chat_id,type,colour\n5", "list.csv:1: bad header"),
        ("chat_id,lang\n5,fr", "list.csv:2: lang must be zh or en, got 'fr'"),
        ("chat_id,type\n5,robot", "list.csv:2: type must be one of private, group"),
        ("chat_id,type\n5,private,08:00", "list.csv:2: 3 fields, the header has 2"),
        ("chat_id,type\n,private", "list.csv:2: chat_id is missing"),
        ("", "list.csv:1: no chats in the file"),
        ('{"chat_id": 5}\n{"chat_id": 5,', "list.csv:2: not a JSON object"),
        ('{"chat_id": 5}\n[5]', "list.csv:2: not a JSON object such as"),
        ('{"chat_id": true}', "list.csv:1: chat_id must be a number"),
        ('{"chat_id": 5, "langauge": "en"}', "list.csv:1: unknown key 'langauge'"),
        ('{"chat_id": 5, "time": 800}', "list.csv:1: time must be a string, got 800"),
    ],
)
def test_each_bad_row_kind_is_file_line_message(text: str, error: str) -> None:
    _rows, errors = parse(text)
    assert len(errors) == 1 and errors[0].startswith(error), errors


def test_every_bad_row_is_reported_in_line_order() -> None:
    _rows, errors = parse("1\n-2\n3,xx\n4\n1\n")
    assert [e.split(":")[1] for e in errors] == ["2", "3", "5"]


def test_not_utf8_names_its_line() -> None:
    _rows, errors = parse_subscribers("x.csv", b"1\n2\n\xff\xfe3\n")
    assert [str(e) for e in errors] == ["x.csv:3: not UTF-8 text; save the file as UTF-8"]


# -- the command ----------------------------------------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    content = tmp_path / "content"
    content.mkdir()
    path.write_text(f"content:\n  dir: {content}\nstorage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored(tmp_path: Path) -> list[tuple[int, str, str, str | None, str | None]]:
    async def read() -> list[tuple[int, str, str, str | None, str | None]]:
        async with await Database.open(tmp_path / "db.sqlite3") as db:
            rows = await db.rows(
                "SELECT id, type, status, delivery_time, language FROM chats ORDER BY id"
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]

    return asyncio.run(read())


def test_a_bad_row_imports_nothing_and_lists_every_problem(
    capsys: pytest.CaptureFixture[str], cfg: Path, tmp_path: Path
) -> None:
    listing = tmp_path / "chats.csv"
    listing.write_text("chat_id,type,time,lang\n1,,08:00,en\n-2,,,\n3,,25:00,\n4\n", "utf-8")
    code, out, err = cli(capsys, "subscribers", "import", str(listing), "--config", str(cfg))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{listing}:3: chat -2 is a group or channel: give its type (group, supergroup or channel)",
        f"{listing}:4: time must be HH:MM (00:00 to 23:59) or now, got '25:00'",
        f"{listing}: 2 bad rows; nothing imported (fix them and run again)",
    ]
    assert stored(tmp_path) == []


def test_import_export_round_trip_and_idempotence(
    capsys: pytest.CaptureFixture[str], cfg: Path, tmp_path: Path
) -> None:
    listing = tmp_path / "chats.csv"
    listing.write_text("1,08:00,en\n-1001234567890,channel,zh\n-42,group\n7,now\n", "utf-8")
    code, out, _ = cli(capsys, "subscribers", "import", str(listing), "--config", str(cfg))
    assert (code, out) == (0, f"{listing}: 4 chats: added 4, updated 0, unchanged 0, skipped 0\n")
    code, out, _ = cli(capsys, "subscribers", "import", str(listing), "--config", str(cfg))
    assert (code, out) == (0, f"{listing}: 4 chats: added 0, updated 0, unchanged 4, skipped 0\n")

    code, exported, _ = cli(capsys, "subscribers", "export", "--config", str(cfg))
    assert code == 0
    # `now` is stored as /time now stores it: on arrival.
    assert exported == (
        "chat_id,type,time,lang\n"
        "-1001234567890,channel,,zh\n-42,group,,\n1,private,08:00,en\n7,private,now,\n"
    )
    before = stored(tmp_path)
    again = tmp_path / "exported.csv"
    code, _, err = cli(capsys, "subscribers", "export", "--out", str(again), "--config", str(cfg))
    assert (code, err) == (0, f"{again}: 4 chats\n")
    assert again.read_text("utf-8") == exported
    code, out, _ = cli(capsys, "subscribers", "import", str(again), "--config", str(cfg))
    assert out.endswith("added 0, updated 0, unchanged 4, skipped 0\n")
    assert stored(tmp_path) == before

    changed = tmp_path / "changed.jsonl"
    changed.write_text(json.dumps({"chat_id": 1, "time": "09:15"}) + "\n", "utf-8")
    code, out, _ = cli(capsys, "subscribers", "import", str(changed), "--config", str(cfg))
    assert out.endswith("added 0, updated 1, unchanged 0, skipped 0\n")
    # A field left out keeps what the chat has: lang stays en.
    assert (1, "private", "active", "09:15", "en") in stored(tmp_path)


async def test_stop_and_block_win_over_a_list(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "db.sqlite3") as db:
        await chats.subscribe(db, ChatInfo(1, "private"), now=WHEN)
        await audience.stop(db, 1)  # /stop
        await chats.subscribe(db, ChatInfo(2, "private"), now=WHEN)
        await chats.mark_inactive(db, 2, "blocked the bot")
        await chats.set_language(db, ChatInfo(3, "private"), "en")  # known, never subscribed
        await chats.subscribe(db, ChatInfo(-4, "group"), now=WHEN)
        await chats.migrate(db, -4, -1004)  # became a supergroup
        rows = [Row(1, 1, "private"), Row(2, 2, "private"), Row(3, 3, "private", "07:00")]
        report = await import_rows(db, [*rows, Row(4, -4, "group")], now=WHEN)
        assert (report.added, report.updated, report.unchanged) == (1, 0, 0)
        assert [(r.chat_id, why) for r, why in report.skipped] == [
            (1, "stopped (stopped by the user)"),
            (2, "blocked (blocked the bot)"),
            (-4, "migrated to -1004"),
        ]
        got = {c.id: (c.status.value, c.language) for c in await chats.list_chats(db)}
        assert got[1] == ("stopped", None) and got[2][0] == "blocked"
        assert got[3] == ("active", "en")  # subscribed, its own language kept


def test_stop_sent_through_telegram_wins(
    capsys: pytest.CaptureFixture[str], fake_api: FakeBotAPI, tmp_path: Path
) -> None:
    """End to end: a user /start-s and /stop-s the real bot; a list naming them leaves them
    stopped, and they get nothing more."""
    content = tmp_path / "content"
    content.mkdir()
    config = make_config(tmp_path, content, fake_api)

    async def talk() -> None:
        async with BotUnderTest(fake_api, config) as bot:
            await bot.say(501, "/start")
            await bot.say(501, "/stop")
            await bot.say(502, "/start")

    asyncio.run(talk())
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"content:\n  dir: {content}\nstorage:\n  path: {config.storage_path}\n")
    listing = tmp_path / "chats.csv"
    listing.write_text("501\n502\n503\n", "utf-8")
    code, out, err = cli(capsys, "subscribers", "import", str(listing), "--config", str(cfg))
    assert code == 0
    assert out == f"{listing}: 3 chats: added 1, updated 0, unchanged 1, skipped 1\n"
    assert err == f"{listing}:1: skipped chat 501: stopped (stopped by the user)\n"
    code, out, _ = cli(capsys, "subscribers", "export", "--all", "--config", str(cfg))
    assert out == (
        "chat_id,type,time,lang,status\n"
        "501,private,,,stopped\n502,private,,,active\n503,private,,,active\n"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.csv", "missing.csv: no such file"), (".", "is a folder")],
)
def test_an_unreadable_file_is_one_line(
    capsys: pytest.CaptureFixture[str], cfg: Path, tmp_path: Path, name: str, message: str
) -> None:
    code, _, err = cli(capsys, "subscribers", "import", str(tmp_path / name), "--config", str(cfg))
    assert code == 1 and len(err.splitlines()) == 1 and message in err, err


def test_config_before_or_after_the_action(
    capsys: pytest.CaptureFixture[str], cfg: Path, tmp_path: Path
) -> None:
    listing = tmp_path / "chats.csv"
    listing.write_text("5,en\n", "utf-8")
    assert cli(capsys, "subscribers", "--config", str(cfg), "import", str(listing))[0] == 0
    for argv in (("--config", str(cfg), "export"), ("export", "--config", str(cfg))):
        code, out, _ = cli(capsys, "subscribers", *argv)
        assert (code, out) == (0, "chat_id,type,time,lang\n5,private,,en\n"), argv
