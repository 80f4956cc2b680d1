"""Commands on the archive: check, index (and --rebuild), show, search, trend, console."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config
from bot.core.content import read_archive
from bot.core.model import Severity
from bot.core.render import issue_plain, search_page_plain
from bot.core.search import QueryError

if TYPE_CHECKING:
    pass

from bot.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    _future_issues,
    _issue_json,
    _note,
    _open_synced,
    _print_json,
    _problem_lines,
    resolve_issue_date,
)


async def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from bot.source.follow import content_root

    root = Path(args.dir) if args.dir else content_root(config)
    archive = read_archive(root)
    problems = sorted(
        [*archive.problems, *_future_issues(archive.issues.values(), config)],
        key=lambda p: (p.file, p.line),
    )
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if args.json:
        _print_json(
            {
                "issues": len(archive.issues),
                "items": archive.item_count,
                "problems": [p.as_dict() for p in problems],
            }
        )
    else:
        for p in problems:
            print(p)
        warnings = len(problems) - len(errors)
        _note(
            args,
            f"{root}: {len(archive.issues)} issues, {archive.item_count} items, "
            f"{len(errors)} errors, {warnings} warnings",
        )
    return EXIT_FAIL if errors else EXIT_OK


async def cmd_index(args: argparse.Namespace, config: Config) -> int:
    if args.rebuild:
        return await _rebuild(config)
    store, report = await _open_synced(config)
    await store.db.close()
    if args.json:
        _print_json(
            {
                "issues": report.issues,
                "items": report.items,
                "added": [d.isoformat() for d in report.added],
                "updated": [d.isoformat() for d in report.updated],
                "removed": [d.isoformat() for d in report.removed],
                "files_read": report.files_read,
                "problems": [p.as_dict() for p in report.problems],
            }
        )
        return EXIT_OK
    if report.problems:
        print(_problem_lines(report.problems))
    for label, dates in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
    ):
        if dates:
            shown = ", ".join(d.isoformat() for d in dates[:10])
            more = f" and {len(dates) - 10} more" if len(dates) > 10 else ""
            print(f"{label} {len(dates)}: {shown}{more}")
    print(
        f"{config.storage_path}: {report.issues} issues, {report.items} items "
        f"({report.files_read} files read, {len(report.problems)} problems)"
    )
    return EXIT_OK


async def _rebuild(config: Config) -> int:
    from bot.db.rebuild import rebuild

    done = await rebuild(config.storage_path, config.content_dir)
    for problem in done.report.problems:
        print(problem)
    kept = ", ".join(f"{table} {n}" for table, n in done.kept.items()) or "nothing"
    print(
        f"{config.storage_path}: rebuilt: {done.report.issues} issues, {done.report.items} items; kept {kept}"
    )
    for table, why in done.lost.items():
        print(f"{config.storage_path}: {table}: {why}", file=sys.stderr)
    if done.old:
        print(f"the previous file is {done.old}", file=sys.stderr)
    return EXIT_OK


async def cmd_show(args: argparse.Namespace, config: Config) -> int:
    store, _ = await _open_synced(config)
    try:
        date = await resolve_issue_date(store, args.date, dt.date.today())
        issue = await store.issue(date)
        if issue is None:
            before, after = await store.neighbors(date)
            near = ", ".join(d.isoformat() for d in (before, after) if d) or "none"
            raise CliError(f"no issue on {date.isoformat()}; nearest: {near}")
    finally:
        await store.db.close()
    if args.json:
        _print_json(_issue_json(issue))
    else:
        print(issue_plain(issue, args.lang))
    return EXIT_OK


async def cmd_search(args: argparse.Namespace, config: Config) -> int:
    store, _ = await _open_synced(config)
    try:
        page = await store.search(" ".join(args.terms), offset=args.offset, limit=args.limit)
    except QueryError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    finally:
        await store.db.close()
    if args.json:
        _print_json(
            {
                "total": page.total,
                "results": [
                    {
                        "date": h.date.isoformat(),
                        "number": h.number,
                        "text": h.text,
                        "urls": list(h.urls),
                    }
                    for h in page.hits
                ],
            }
        )
    else:
        print(search_page_plain(page, args.lang))
    return EXIT_OK


async def cmd_trend(args: argparse.Namespace, config: Config) -> int:
    from bot import replies
    from bot.core.search import parse_query
    from bot.core.trend import MAX_SERIES, sparkline, to_json

    text = " ".join(args.terms)
    try:
        query = parse_query(text)
    except QueryError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    if not query.terms or len(query.terms) > MAX_SERIES:
        raise CliError(f"give 1 to {MAX_SERIES} terms (and at most one date filter)", EXIT_USAGE)
    store, _ = await _open_synced(config)
    try:
        trend = await replies.load_trend(store, query)
    finally:
        await store.db.close()
    found = trend is not None and trend.total > 0
    numbered = False  # the legend numbers the terms when no font has them: say which is which
    if args.png:
        if trend is None or not found:
            raise CliError(f"nothing found for {text!r}: no chart written")
        png, numbered = await asyncio.to_thread(replies.trend_picture, trend)
        Path(args.png).write_bytes(png)
    if args.json:
        _print_json(to_json(trend) if trend else {"bucket": "month", "total": 0, "series": []})
    elif trend is None or not found:
        print(f"nothing found for {text!r}")
    else:
        for s in trend.series:
            print(f"{s.term}\t{sparkline([n for _, n in s.counts])}\t{s.total}")
        print(replies.trend_caption(args.lang, trend, numbered))
    if args.png and not args.json:
        print(f"PNG: {args.png}")
    return EXIT_OK


async def cmd_console(args: argparse.Namespace, config: Config) -> int:
    from bot.console import run_console

    # Bytes that are not UTF-8 (a pasted file, a wrong terminal setting) become U+FFFD
    # instead of ending the session with a UnicodeDecodeError.
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")
    return await run_console(config, sys.stdin, sys.stdout, args.lang)
