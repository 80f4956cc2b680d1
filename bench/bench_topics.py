"""What forum topics cost: planning a broadcast over chats and topics, and the schema upgrade.

Usage: ``python -m bench.bench_topics [--chats 20000] [--forums 2000] [--upgrade 1000000]``.

- Planning: ``broadcast_now`` of the newest bundled issue (``content/``) into a fresh
  database of N private chats, first without topics (the baseline, same run), then with
  F forum supergroups of 5 subscribed topics each (the group itself not subscribed).
  Nothing is sent: the engine is not started.
- Upgrade: a database at the version before the topics migration, with U outbox rows
  (sent, 4 per chat) and a watch per 10 chats, opened by this release (the migration
  rebuilds ``outbox`` and ``watches``, copying every row).

Wall and CPU seconds (``process_time``: every thread of this process, aiosqlite's included).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import Delivery
from bot.db.archive import Archive
from bot.db.database import Database
from bot.db.schema import MIGRATIONS
from bot.delivery.engine import DeliveryEngine

CONTENT = Path(__file__).resolve().parent.parent / "content"
TOPICS_PER_FORUM = 5


class _NoSend:
    async def send_html(self, *args: object, **kw: object) -> int:
        raise AssertionError("nothing is sent")

    async def edit_html(self, *args: object, **kw: object) -> None:
        raise AssertionError("nothing is edited")

    def redact(self, text: str) -> str:
        return text


async def plan(tmp: Path, chats: int, forums: int) -> tuple[float, float, int]:
    archive = await Archive.open(tmp / f"plan-{chats}-{forums}.sqlite3")
    try:
        await archive.sync(CONTENT)
        db = archive.db
        async with db.transaction():
            await db.executemany(
                "INSERT INTO chats (id, type, status) VALUES (?, 'private', 'active')",
                [(i,) for i in range(1, chats + 1)],
            )
            groups = [-1_000_000_000_000 - f for f in range(forums)]
            await db.executemany(
                "INSERT INTO chats (id, type, status) VALUES (?, 'supergroup', 'stopped')",
                [(g,) for g in groups],
            )
            await db.executemany(
                "INSERT INTO topics (chat_id, thread_id, status) VALUES (?, ?, 'active')",
                [(g, t) for g in groups for t in range(2, 2 + TOPICS_PER_FORUM)],
            )
        engine = DeliveryEngine(archive, _NoSend(), Delivery())
        wall, cpu = time.perf_counter(), time.process_time()
        await engine.broadcast_now(None, "cli")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows = int(await db.value("SELECT count(*) FROM outbox"))
        return wall, cpu, rows
    finally:
        await archive.close()


async def upgrade(tmp: Path, rows: int) -> tuple[float, float]:
    path = tmp / f"upgrade-{rows}.sqlite3"
    before = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE topics" in m)
    old = await Database.open(path, migrations=MIGRATIONS[:before])
    await old.close()
    chats = max(1, rows // 4)
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO chats (id, type, status) VALUES (?, 'private', 'active')",
        [(c,) for c in range(1, chats + 1)],
    )
    conn.execute("INSERT INTO texts (id, sha256, html) VALUES (1, 'a', 'x')")
    conn.executemany(
        "INSERT INTO outbox (kind, issue, chat_id, part, text_id, status, created_at)"
        " VALUES ('issue', ?, ?, ?, 1, 'sent', 0)",
        [(f"2025-02-{d:02d}", c, p) for c in range(1, chats + 1) for d in (6, 10) for p in (0, 1)],
    )
    conn.executemany(
        "INSERT INTO watches (chat_id, terms) VALUES (?, 'x')",
        [(c,) for c in range(1, chats + 1, 10)],
    )
    conn.commit()
    conn.close()
    wall, cpu = time.perf_counter(), time.process_time()
    db = await Database.open(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await db.close()
    return wall, cpu


async def run(chats: int, forums: int, rows: int) -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-topics-"))
    try:
        lines = ["| run | outbox rows | wall s | CPU s |", "|---|---:|---:|---:|"]
        for label, n_forums in (("no topics (baseline)", 0), ("with topics", forums)):
            wall, cpu, made = await plan(tmp, chats, n_forums)
            what = f"plan {chats:,} chats, {n_forums * TOPICS_PER_FORUM:,} topics: {label}"
            lines.append(f"| {what} | {made:,} | {wall:.2f} | {cpu:.2f} |")
        wall, cpu = await upgrade(tmp, rows)
        lines.append(
            f"| schema upgrade (outbox and watches rebuilt) | {rows:,} | {wall:.2f} | {cpu:.2f} |"
        )
        return lines
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_topics", description=__doc__)
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--forums", type=int, default=2_000)
    parser.add_argument("--upgrade", type=int, default=1_000_000, help="outbox rows to upgrade")
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(run(args.chats, args.forums, args.upgrade))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
