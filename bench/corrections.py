"""The correction run of ``python -m bench.bench_delivery --corrections [--quick]``: 10,000
private chats received an issue from a git upstream, the upstream corrects it, and the
bot edits every message in place (``editMessageText``).

Two processes besides this one: the sink (:mod:`bench.sink`, Telegram's free limits scaled
by K: 30 x K/s overall, 1 x K/s per chat, edits taking from the same buckets as messages)
and the engine process, wired like ``briefbot run`` following a git source: a ``Follower``
(dulwich fetch of a bare repository in the temp dir, index, revisions) polled every
``poll_seconds: 1`` (the minimum) with ``settle_seconds: 0`` (the minimum), each poll
followed by ``engine.tick()``, and ``DeliveryEngine`` over ``FastTransport`` with the limits
``limits_for`` gives the default 25/s, every rate times K (as the main benchmark scales
them). ``delivery.on_arrival: true`` sends the issue once it is committed; then the engine
process commits the correction and waits until every edit is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import engine_process

REPO = Path(__file__).resolve().parents[1]
CHATS, QUICK_CHATS = 10_000, 2_000
SCALE = 10.0
RATE, SINK_RATE = 25.0, 30.0  # the engine's default rate; the sink's free limit (Telegram's)
RATIO_TARGET = 0.95
POLL_S, SETTLE_S = 1.0, 0.0  # content.source.poll_seconds and content.settle_seconds minima
TOKEN = "123456789:AAbench-corrections-token-0000000000"
FEB = "docs/2025/newsflash-202502.md"
MAR = "docs/2025/newsflash-202503.md"
FIRST_CHAT = 100_000_001


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _issue(*items: str) -> str:
    lines = ["## 2025.03.01", "", "2025年03月01日 💡行业快讯", ""]
    return "\n".join(lines + [f"{n}. {t}" for n, t in enumerate(items, 1)]) + "\n"


ITEMS = [f"第{n}条：业内人士认为这一变化影响深远" for n in range(1, 6)]
OLD = "## 2025.02.28\n\n2025年02月28日 💡行业快讯\n\n1. 二月最后一期\n"


# -- the engine process ------------------------------------------------------------------


async def _count(store: Any, sql: str) -> int:
    return int(await store.db.value(sql) or 0)


async def serve_engine(api_url: str, work: Path, chats: int, scale: float) -> None:
    import dataclasses

    from bot.config import parse_config
    from bot.db.archive import Archive
    from bot.delivery.engine import DeliveryEngine, limits_for
    from bot.logs import setup_logging
    from bot.source.follow import Follower
    from bot.telegram.fastsend import FastTransport
    from fakebot.upstream import Upstream

    setup_logging("WARNING", [TOKEN])
    up = Upstream(work / "up.git")
    up.push({FEB: OLD})
    raw = {
        "content": {
            "source": {"git": up.url, "path": "docs", "poll_seconds": POLL_S},
            "settle_seconds": SETTLE_S,
        },
        "storage": {"path": str(work / "data" / "bot.sqlite3")},
        "delivery": {"on_arrival": True, "max_messages_per_second": RATE},
    }
    config = parse_config(raw, work)
    base = limits_for(config.delivery)
    limits = dataclasses.replace(
        base,
        per_second=base.per_second * scale,
        private_per_second=base.private_per_second * scale,
        group_per_minute=base.group_per_minute * scale,
    )
    store = await Archive.open(config.storage_path)
    follower = Follower(config, store)
    assert (await follower.poll()).ok  # the first fetch: the archive, not broadcast
    async with store.db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO chats (id, type, status, last_issue, last_slot)"
            " VALUES (?, 'private', 'active', '2025-02-28', '2025-03-01T00:30:00Z')",
            [(c,) for c in range(FIRST_CHAT, FIRST_CHAT + chats)],
        )
    transport = FastTransport(TOKEN, base_url=f"{api_url}/bot", pool=limits.in_flight + 4)
    engine = DeliveryEngine(
        store, transport, config.delivery, limits=limits, settle_seconds=SETTLE_S
    )
    await engine.start()

    cycles: list[tuple[float, float, float]] = []  # (start, polled, ticked), wall clock

    async def job() -> None:  # reload_content in bot/telegram/app.py, every poll_seconds
        while True:
            due = time.monotonic() + POLL_S
            start = time.time()
            await follower.poll()
            polled = time.time()
            await engine.tick()
            cycles.append((start, polled, time.time()))
            ready = await follower.newly_ready()
            if ready:
                await engine.on_new_issues(ready)
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    poller = asyncio.create_task(job())
    budget = 60 + 3 * chats / limits.per_second

    async def until(sql: str, n: int) -> bool:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            if await _count(store, sql) >= n:
                return True
            await asyncio.sleep(0.2)
        return False

    up.push({MAR: _issue(*ITEMS)})
    sent = await until("SELECT count(*) FROM outbox WHERE status = 'sent'", chats)
    await asyncio.sleep(1.5)  # the per-chat buckets refill: the edits are not held by sends
    cpu0 = time.process_time()
    committed = time.time()
    up.push({MAR: _issue(*ITEMS[:2], ITEMS[2] + "（更正）", *ITEMS[3:])})
    done = await until("SELECT count(*) FROM edits WHERE status = 'done'", chats)
    cpu = time.process_time() - cpu0
    poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    await engine.stop()
    # The first poll that began after the commit fetched it; its tick planned the edits.
    start, polled, ticked = next(c for c in cycles if c[0] >= committed)
    statuses = dict(await store.db.rows("SELECT status, count(*) FROM edits GROUP BY status"))
    outbox_sent = await _count(store, "SELECT count(*) FROM outbox WHERE status = 'sent'")
    await store.close()
    await transport.close()
    print(
        json.dumps(
            {
                "committed": committed,
                "all_sent": sent,
                "all_edited": done,
                "edits": statuses,
                "outbox_sent": outbox_sent,
                "cpu_s": cpu,
                "wait_s": start - committed,
                "poll_s": polled - start,
                "tick_s": ticked - polled,
                "in_flight": limits.in_flight,
                "burst": limits.burst,
            }
        ),
        flush=True,
    )


# -- the run, seen from the sink ---------------------------------------------------------


@dataclass
class CorrectionRun:
    chats: int
    scale: float
    engine: dict[str, Any]
    sink: dict[str, Any]

    @property
    def allowed(self) -> float:
        return RATE * self.scale

    @property
    def edit_times(self) -> list[float]:
        return sorted(t for t, _, _ in self.sink["edited"])

    @property
    def edited(self) -> int:
        return len(self.sink["edited"])

    @property
    def span_s(self) -> float:
        t = self.edit_times
        return t[-1] - t[0] if len(t) > 1 else 0.0

    @property
    def rate(self) -> float:
        return (self.edited - 1) / self.span_s if self.span_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.rate / self.allowed

    @property
    def first_s(self) -> float:
        """From the correction's commit to the first edit the sink accepted."""
        return self.edit_times[0] - float(self.engine["committed"]) if self.edited else 0.0

    @property
    def once(self) -> bool:
        """Every message the sink accepted was edited, each exactly once, nothing re-sent."""
        sent = {int(c) for _, c in self.sink["accepted"]}
        per_message = Counter((c, m) for _, c, m in self.sink["edited"])
        return (
            len(self.sink["accepted"]) == self.chats == len(sent)
            and len(per_message) == self.chats
            and set(per_message.values()) == {1}
            and {c for c, _ in per_message} == sent
            and self.engine["edits"] == {"done": self.chats}
        )

    @property
    def ok(self) -> bool:
        return self.ratio >= RATIO_TARGET and self.sink["edit_429"] == 0 and self.once


async def run_corrections(work: Path, quick: bool) -> CorrectionRun:
    from bench.paid import _stats

    chats = QUICK_CHATS if quick else CHATS
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sink", "--token", TOKEN, "--scale", str(SCALE),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert sink.stdout is not None
    url = f"http://127.0.0.1:{json.loads(await sink.stdout.readline())['port']}"
    try:
        engine = await engine_process(
            "bench.corrections", url, str(work), str(chats), str(SCALE), cwd=REPO
        )
        stats = await asyncio.to_thread(_stats, url)
    finally:
        sink.terminate()
        await sink.wait()
    run = CorrectionRun(chats, SCALE, engine, stats)
    log(
        f"corrections: {run.edited:,} edited at {run.rate:.0f}/s (ratio {run.ratio:.3f}), "
        f"{stats['edit_429']} x 429, first edit {run.first_s * 1000:.0f} ms after the commit"
    )
    return run


def render_corrections(command: str, run: CorrectionRun) -> str:
    e, s = run.engine, run.sink
    k = run.scale
    row = (
        f"| {run.chats:,} | {run.edited:,} | {'yes' if run.once else '**no**'} "
        f"| {run.span_s:.2f} s | {run.rate:.1f}/s | **{run.ratio:.3f}** | {s['edit_429']} "
        f"| **{run.first_s * 1000:.0f} ms** (next poll {e['wait_s'] * 1000:.0f} ms, "
        f"fetch + index {e['poll_s'] * 1000:.0f} ms, tick + planning {e['tick_s'] * 1000:.0f} ms) "
        f"| {float(e['cpu_s']) * 1000 / max(1, run.edited):.2f} ms "
        f"| {'PASS' if run.ok else 'FAIL'} |"
    )
    return "\n".join(
        [
            "# briefbot correction benchmark",
            "",
            f"Command: `{command}`",
            "",
            f"{run.chats:,} private chats received the 2025-03-01 issue (one message each) "
            "from a git upstream (a bare repository in the temp dir, fetched with dulwich); "
            "the upstream commits a correction and the bot edits every message in place. "
            f"`content.source.poll_seconds: {POLL_S:g}` and `content.settle_seconds: "
            f"{SETTLE_S:g}` (their minima), each poll followed by `engine.tick()` as in "
            "`briefbot run`; the engine over `FastTransport` keeps the default 25/s, time "
            f"running K = {k:g} times faster: {RATE * k:g}/s overall, {k:g}/s per chat "
            f"(burst {e['burst']:g}, {e['in_flight']} in flight). The sink (bench/sink.py, "
            f"its own process) allows {SINK_RATE * k:g}/s overall and {k:g}/s per chat for "
            "messages and edits alike, and answers 429 beyond. *Rate*: (edits - 1) / first "
            f"to last edit accepted; *÷ allowed*: / {RATE * k:g}. *Exactly once*: every "
            "message the sink accepted was edited, each once (counted per chat and message "
            "id at the sink), nothing re-sent, and the `edits` table says done for all. "
            "*Commit → first edit*: from the correction's commit to the first edit the sink "
            "accepted, split into the wait for the next poll, the poll (fetch, index, "
            "revisions) and the tick that plans the edits. *CPU*: the engine process's CPU from the commit to the last edit / "
            "edits.",
            "",
            "| Chats | Edited | Exactly once | First → last | Rate | ÷ allowed | 429s "
            "| Commit → first edit | CPU per edit | Result |",
            "|---|---|---|---|---|---|---|---|---|---|",
            row,
            "",
            f"Targets: ÷ allowed >= {RATIO_TARGET}, 0 x 429, every chat edited exactly once.",
            "",
        ]
    )


if __name__ == "__main__":
    url_, work_, chats_, scale_ = sys.argv[1:5]
    asyncio.run(serve_engine(url_, Path(work_), int(chats_), float(scale_)))
