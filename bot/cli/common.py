"""What every briefbot command shares: the error that ends a command with one line and an
exit code, JSON output, opening the synced archive, reading a typed date."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bot.config import Config
from bot.core.dates import DateError
from bot.core.model import Issue, Problem, Severity
from bot.db.archive import Archive
from bot.db.database import Database
from bot.db.sync import SyncReport
from bot.errors import BriefbotError
from bot.logs import json_line, redact

if TYPE_CHECKING:
    pass

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
TOKEN_REJECTED = "the token was rejected by Telegram: check telegram.token or TELEGRAM_BOT_TOKEN"

Handler = Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]]


MAX_ARG = 10**9  # results to skip or show: SQLite needs a 64-bit integer, people far less


class CliError(BriefbotError):
    """A message for the user and the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _issue_json(issue: Issue) -> dict[str, Any]:
    return {
        "date": issue.key,
        "title": issue.title,
        "items": [{"number": i.number, "text": i.text, "urls": list(i.urls)} for i in issue.items],
    }


def _note(args: argparse.Namespace, text: str) -> None:
    """A line for the person at the terminal on stderr (a JSON INFO line with --log-format
    json: then every line on stderr is JSON)."""
    if getattr(args, "log_format", None) == "json":
        print(json_line("INFO", "briefbot", redact(text)), file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _problem_lines(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


async def _open_synced(config: Config) -> tuple[Archive, SyncReport]:
    db = await Database.open(config.storage_path)
    try:
        archive = Archive(db)
        if config.content_source is not None:  # the git working copy: briefbot pull fetches
            from bot.source.follow import Follower

            return archive, await Follower(config, archive).index()
        return archive, await archive.sync(config.content_dir)
    except BaseException:
        await db.close()
        raise


# -- commands ----------------------------------------------------------------------------


def _future_issues(issues: Iterable[Issue], config: Config) -> list[Problem]:
    """An issue dated after today (with a day of slack, in delivery.timezone) is a typo
    such as ``## 2052.02.15``: an error, and the planner never delivers it."""
    from bot.delivery.planner import horizon

    limit = horizon(dt.datetime.now(dt.UTC), config.delivery.tz)
    return [
        Problem(
            i.file,
            i.line,
            Severity.ERROR,
            f"issue {i.date.isoformat()} is dated after today; fix the heading's date",
        )
        for i in issues
        if i.date > limit
    ]


async def resolve_issue_date(store: Archive, text: str, today: dt.date) -> dt.date:
    """A typed date to an issue date (``latest`` is the newest issue)."""
    try:
        when = await store.resolve_date(text, today)
    except DateError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    if when is None:
        raise CliError(
            "the archive is empty: add files to the content folder, then run briefbot index"
        )
    return when


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_ARG:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_ARG}")
    return int(text)
