"""``briefbot doctor``: is this installation able to run, and if not, what to fix.

One line per check, ``OK|WARN|FAIL  check: detail / what to fix``; the exit code is 1 if
any check failed. The token is checked with getMe through ``telegram.api_base_url`` and is
never printed (every line goes through :func:`bot.logs.redact`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from bot.config import Config, ConfigError, load_config
from bot.core.content import read_archive
from bot.core.model import Severity
from bot.db.backup import integrity, summarize
from bot.db.schema import MIGRATIONS
from bot.logs import redact

Level = Literal["OK", "WARN", "FAIL"]
DiskUsage = Callable[[Path], Any]  # shutil.disk_usage: anything with .free
TOKEN_TIMEOUT = 10.0  # seconds for getMe: doctor answers promptly even when offline


@dataclass(frozen=True)
class Check:
    level: Level
    name: str
    detail: str

    def line(self) -> str:
        return redact(f"{self.level:<4}  {self.name}: {self.detail}")


def check_config(path: str | None) -> tuple[Config | None, Check]:
    try:
        config = load_config(path)
    except ConfigError as err:
        return None, Check("FAIL", "config", f"{err} / fix it (see config.example.yaml)")
    where = str(config.source) if config.source else "built-in defaults (no config file)"
    return config, Check("OK", "config", where)


async def check_token(config: Config) -> Check:
    from telegram.error import InvalidToken, TelegramError

    from bot.telegram.transport import make_bot

    try:
        token = config.token()
    except ConfigError as err:
        return Check("FAIL", "token", str(err))
    api = config.telegram.api_base_url
    bot = make_bot(config, token, pool=1)
    try:
        me = await bot.get_me(read_timeout=TOKEN_TIMEOUT, connect_timeout=TOKEN_TIMEOUT)
    except InvalidToken:
        return Check(
            "FAIL",
            "token",
            f"rejected by {api} / get the current token from @BotFather "
            "and set TELEGRAM_BOT_TOKEN or telegram.token",
        )
    except TelegramError as err:
        return Check(
            "FAIL",
            "token",
            f"cannot reach {api}: {type(err).__name__}: {err} / check the network "
            "and telegram.api_base_url",
        )
    finally:
        with contextlib.suppress(Exception):  # closing a client that never connected
            await bot.shutdown()
    return Check("OK", "token", f"@{me.username} (id {me.id}) via {api}")


def check_content(config: Config, today: dt.date) -> Check:
    root = config.content_dir
    if not root.is_dir():
        if config.content_source is not None:
            return Check("WARN", "content", f"{root} is empty until content.source is fetched")
        return Check("FAIL", "content", f"{root} does not exist / create it or fix content.dir")
    if not os.access(root, os.R_OK | os.X_OK):
        return Check(
            "FAIL", "content", f"{root} is not readable by this user / fix its permissions"
        )
    archive = read_archive(root)
    errors = sum(p.severity is Severity.ERROR for p in archive.problems)
    count = f"{len(archive.issues)} issues, {archive.item_count} items"
    if not archive.issues:
        return Check("WARN", "content", f"{root}: no issues yet / add month files")
    newest = max(i.date for i in archive.issues.values())
    age = (today - newest).days
    if errors:
        return Check(
            "WARN", "content", f"{count}, {errors} errors / run briefbot check {root} for details"
        )
    if age > config.ops.stale_days:
        return Check(
            "WARN",
            "content",
            f"{count}; the newest issue, {newest.isoformat()}, is {age} days old "
            f"(ops.stale_days: {config.ops.stale_days}) / is the content still updated?",
        )
    return Check("OK", "content", f"{count}, newest {newest.isoformat()}")


def _writable_folder(path: Path) -> Path | None:
    """The nearest existing folder of ``path`` if this user may create files in it."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def check_database(config: Config) -> Check:
    path = config.storage_path
    if not path.exists():
        if _writable_folder(path) is None:
            return Check(
                "FAIL",
                "database",
                f"cannot create {path}: its folder is not writable / fix storage.path",
            )
        return Check("OK", "database", f"{path} will be created")
    if not path.is_file():
        return Check("FAIL", "database", f"{path} is not a file / fix storage.path")
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return Check(
            "FAIL",
            "database",
            f"{path} (or its folder, for the -wal file) is not writable by this user "
            "/ fix the owner or permissions",
        )
    fix = "restore a backup (docs/operations-backup.md) or move it away to start afresh"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            problem = integrity(conn)
            if problem != "ok":
                return Check("FAIL", "database", f"{path} is damaged ({problem}) / {fix}")
            summary = summarize(conn, path)
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return Check("FAIL", "database", f"{path}: {err} / {fix}")
    known = len(MIGRATIONS)
    if summary.schema > known:
        return Check(
            "FAIL",
            "database",
            f"{path} has schema {summary.schema}, newer than this release ({known}) "
            "/ upgrade briefbot",
        )
    upgrade = f"; will be upgraded to schema {known}" if summary.schema < known else ""
    pending = summary.outbox.get("pending", 0)
    return Check(
        "OK",
        "database",
        f"schema {summary.schema}{upgrade}, {summary.issues} issues, {summary.chats} chats, "
        f"{pending} messages pending",
    )


def check_disk(config: Config, usage: DiskUsage = shutil.disk_usage) -> Check:
    folder = config.storage_path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free_mb = usage(folder).free // (1024 * 1024)
    want = config.ops.min_free_mb
    detail = f"{free_mb} MB free in {folder} (ops.min_free_mb: {want})"
    if free_mb < want / 4:
        return Check("FAIL", "disk", f"{detail} / free space now: writes will fail")
    if free_mb < want:
        return Check("WARN", "disk", f"{detail} / free some space")
    return Check("OK", "disk", detail)


async def run_checks(
    config_path: str | None,
    out: TextIO,
    *,
    today: dt.date | None = None,
    disk_usage: DiskUsage = shutil.disk_usage,
) -> int:
    """Print every check; 1 if any failed, else 0."""
    config, first = check_config(config_path)
    checks = [first]
    print(first.line(), file=out, flush=True)
    if config is not None:
        day = today or dt.datetime.now(config.delivery.tz).date()
        checks.append(await check_token(config))
        print(checks[-1].line(), file=out, flush=True)
        for check in (
            check_content(config, day),
            check_database(config),
            check_disk(config, disk_usage),
        ):
            checks.append(check)
            print(check.line(), file=out, flush=True)
    return 1 if any(c.level == "FAIL" for c in checks) else 0
