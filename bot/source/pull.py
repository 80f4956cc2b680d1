"""``briefbot pull``: fetch the git source once, index it, print what changed."""

from __future__ import annotations

import json
import logging
import sys

from bot.config import Config
from bot.db.archive import Archive
from bot.errors import BriefbotError
from bot.logs import redact
from bot.source.follow import Follower

EXIT_OK, EXIT_FAIL = 0, 1


def _dates(dates: list[object]) -> str:
    shown = ", ".join(str(d) for d in dates[:10])
    return shown + (f" and {len(dates) - 10} more" if len(dates) > 10 else "")


async def pull(config: Config, *, as_json: bool = False) -> int:
    if config.content_source is None:
        raise BriefbotError(
            "content.source is not configured: add content.source.git to the config"
        )
    # The outcome is printed below, once: the follower's own warning would repeat it.
    logging.getLogger("bot.source.follow").setLevel(logging.ERROR)
    archive = await Archive.open(config.storage_path)
    try:
        result = await Follower(config, archive).poll()
    finally:
        await archive.close()
    report = result.report
    if as_json:
        data: dict[str, object] = {"ok": result.ok, "error": result.error}
        if result.checkout:
            data["commit"] = result.checkout.commit
            data["files_written"] = result.checkout.written
            data["files_deleted"] = result.checkout.deleted
        if report:
            data.update(
                issues=report.issues,
                items=report.items,
                added=[d.isoformat() for d in report.added],
                updated=[d.isoformat() for d in report.updated],
                removed=[d.isoformat() for d in report.removed],
                problems=[p.as_dict() for p in report.problems],
            )
        data["notes"] = result.notes
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK if result.ok else EXIT_FAIL
    if not result.ok or report is None or result.checkout is None:
        print(f"briefbot: {redact(result.error)}", file=sys.stderr)
        return EXIT_FAIL
    for problem in report.problems:
        print(problem)
    for label, dates in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
    ):
        if dates:
            print(f"{label} {len(dates)}: {_dates(list(dates))}")
    for note in result.notes:
        print(note)
    c = result.checkout
    print(
        f"commit {c.commit[:12]}: {report.issues} issues, {report.items} items"
        f" ({c.written} files written, {c.deleted} deleted)"
    )
    return EXIT_OK
