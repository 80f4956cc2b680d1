"""The paid-broadcast run of ``python -m bench.bench_delivery --paid``: 20,000 private
subscribers at 1,000 messages/s, each sending path side by side in one run.

Three processes: this one (prepares databases, reports), the sink (:mod:`bench.sink`,
Telegram's paid limits, its own core) and the engine, wired like ``briefbot broadcast`` with
``delivery.max_messages_per_second: 1000`` and ``paid_broadcast: true`` (``limits_for``:
burst 30, 200 in flight). Each path gets a fresh database and a fresh sink:

``fast``          bot/telegram/fastsend.py (aiohttp, one body per text), what the bot uses
``fast-uvloop``   the same on uvloop's event loop
``fast-stdjson``  the same with orjson hidden (the standard-library fallback)
``httpx``         the same bodies, POSTed by a raw httpx.AsyncClient with a tuned pool
``ptb``           PtbTransport over PTB's Bot and HTTPXRequest (pool = the window + 4)

CPU per message is the engine process's ``time.process_time()`` (all its threads: the
loop, aiosqlite's) from before ``broadcast_now`` to the end, divided by the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import engine_process

REPO = Path(__file__).resolve().parents[1]
RATE = 1000.0
SUBSCRIBERS, QUICK_SUBSCRIBERS = 20_000, 5_000
RATIO_TARGET, CPU_TARGET_MS = 0.95, 0.8
PATHS = ("fast", "fast-uvloop", "fast-stdjson", "httpx", "ptb")
QUICK_PATHS = ("fast", "ptb")
TOKEN = "123456789:AAbench-paid-broadcast-token-000000000"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the engine process ------------------------------------------------------------------


def _httpx_transport(token: str, base_url: str, pool: int) -> Any:
    """FastTransport's bodies over a raw httpx.AsyncClient: the HTTP client compared alone."""
    import httpx

    from bot.delivery.transport import Failure, SendError
    from bot.telegram.fastsend import FastTransport, classify_answer

    class HttpxTransport(FastTransport):
        client: httpx.AsyncClient | None = None

        async def _post(self, url: str, body: bytes) -> bytes:
            if self.client is None:
                limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
                self.client = httpx.AsyncClient(limits=limits, timeout=10.0)
            try:
                response = await self.client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as err:
                raise SendError(Failure.TRANSIENT, f"NetworkError: {err!r}") from None
            if response.status_code == 200:
                return response.content
            raise classify_answer(response.status_code, response.content)

        async def close(self) -> None:
            if self.client is not None:
                await self.client.aclose()

    return HttpxTransport(token, base_url=base_url, pool=pool)


async def serve_paid_engine(api_url: str, db: Path, path: str) -> None:
    from bot.config import Delivery
    from bot.db.archive import Archive
    from bot.delivery.engine import DeliveryEngine, limits_for
    from bot.logs import setup_logging

    setup_logging("WARNING", [TOKEN])
    config = Delivery(max_messages_per_second=RATE, paid_broadcast=True)
    limits = limits_for(config)
    base_url, pool = f"{api_url}/bot", limits.in_flight + 4
    bot: Any = None
    if path == "ptb":
        from telegram import Bot
        from telegram.request import HTTPXRequest

        from bot.telegram.transport import PtbTransport

        bot = Bot(TOKEN, base_url=base_url, request=HTTPXRequest(connection_pool_size=pool))
        await bot.initialize()
        transport: Any = PtbTransport(bot)
    elif path == "httpx":
        transport = _httpx_transport(TOKEN, base_url, pool)
    else:
        from bot.telegram.fastsend import FastTransport

        transport = FastTransport(TOKEN, base_url=base_url, pool=pool)
    store = await Archive.open(db)
    engine = DeliveryEngine(store, transport, config, limits=limits)
    await engine.start()
    while not engine.sending:
        await asyncio.sleep(0.01)
    cpu0 = time.process_time()
    started = time.time()
    plan = await engine.broadcast_now(None, "cli")
    returned = time.time()
    # A path far below the rate (PTB's) is stopped after twice the time the rate needs: its
    # rate and CPU are measured on what it sent by then, without waiting minutes.
    budget = 10 + 2 * plan.messages / RATE
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.wait(plan.broadcast_id, poll=0.2), budget)
    finished = time.time()
    await engine.stop()
    cpu = time.process_time() - cpu0
    report = await engine.report(plan.broadcast_id or 0)
    sent = await store.db.value("SELECT count(*) FROM outbox WHERE status = 'sent'")
    await store.close()
    await transport.close() if hasattr(transport, "close") else None
    if bot is not None:
        await bot.shutdown()
    print(
        json.dumps(
            {
                "started": started,
                "returned": returned,
                "finished_at": finished,
                "messages": plan.messages,
                "finished": bool(report and report.finished),
                "sent": int(sent or 0),
                "cpu_s": cpu,
                "in_flight": limits.in_flight,
                "burst": limits.burst,
            }
        ),
        flush=True,
    )


def engine_main(api_url: str, db: str, path: str) -> None:
    if path == "fast-stdjson":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # ImportError: the fallback
    if path == "fast-uvloop":
        import uvloop

        uvloop.run(serve_paid_engine(api_url, Path(db), path))
    else:
        asyncio.run(serve_paid_engine(api_url, Path(db), path))


# -- one run -----------------------------------------------------------------------------


@dataclass
class PaidRun:
    path: str
    subscribers: int
    engine: dict[str, Any]
    sink: dict[str, Any]

    @property
    def times(self) -> list[float]:
        return sorted(t for t, _ in self.sink["accepted"])

    @property
    def sent(self) -> int:
        return len(self.sink["accepted"])

    @property
    def rate(self) -> float:
        t = self.times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    @property
    def ratio(self) -> float:
        return self.rate / RATE

    @property
    def cpu_ms(self) -> float:
        return float(self.engine["cpu_s"]) * 1000 / max(1, self.sent)

    @property
    def first_ms(self) -> float:
        return (float(self.sink["first_call"]) - float(self.engine["started"])) * 1000

    @property
    def finished(self) -> bool:
        return bool(self.engine["finished"]) and self.sent == self.subscribers

    @property
    def exactly_once(self) -> bool:
        """None twice at the sink, and the engine recorded as sent what the sink accepted
        (for a run stopped early: what it had sent by then)."""
        return (
            self.sent == int(self.sink["chats"]) == int(self.engine["sent"])
            and self.sink["twice"] == 0
        )

    @property
    def ok(self) -> bool:
        return (
            self.ratio >= RATIO_TARGET
            and self.sink["count_429"] == 0
            and self.exactly_once
            and self.finished
            and self.cpu_ms <= CPU_TARGET_MS
        )


async def _start_sink() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sink", "--token", TOKEN, cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    port = json.loads(await proc.stdout.readline())["port"]
    return proc, f"http://127.0.0.1:{port}"


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/stats", timeout=30) as answer:
        data: dict[str, Any] = json.loads(answer.read())
        return data


async def measure_path(path: str, template: Path, work: Path, subscribers: int) -> PaidRun:
    db = work / f"paid-{path}.sqlite3"
    shutil.copyfile(template, db)
    sink, url = await _start_sink()
    try:
        engine = await engine_process(
            "bench.bench_delivery", "--serve-paid", url, str(db), path, cwd=REPO
        )
        sink_stats = await asyncio.to_thread(_stats, url)
    finally:
        sink.terminate()
        await sink.wait()
    run = PaidRun(path, subscribers, engine, sink_stats)
    log(
        f"paid, {path}: {run.sent:,} sent at {run.rate:.0f}/s (ratio {run.ratio:.3f}), "
        f"{run.sink['count_429']} x 429, {run.cpu_ms:.2f} ms CPU/message, "
        f"first after {run.first_ms:.0f} ms"
    )
    return run


async def prepare(db: Path, content: Path, subscribers: int) -> None:
    """A database with the archive indexed and ``subscribers`` active private chats."""
    import datetime as dt

    from bench.bench_delivery import FIRST_CHAT
    from bot.db.archive import Archive

    store = await Archive.open(db)
    try:
        await store.sync(content)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        async with store.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO chats (id, type, title, status, subscribed_at, last_slot)"
                " VALUES (?, 'private', ?, 'active', ?, ?)",
                [(c, f"User {c}", now, now) for c in range(FIRST_CHAT, FIRST_CHAT + subscribers)],
            )
    finally:
        await store.close()


async def run_paid(work: Path, quick: bool, paths: tuple[str, ...] | None = None) -> list[PaidRun]:
    from bench.gen_archive import generate

    subscribers = QUICK_SUBSCRIBERS if quick else SUBSCRIBERS
    content = work / "content"
    generate(content, 1)
    template = work / "paid-template.sqlite3"
    await prepare(template, content, subscribers)
    chosen = paths or (QUICK_PATHS if quick else PATHS)
    return [await measure_path(p, template, work, subscribers) for p in chosen]


def render_paid(command: str, runs: list[PaidRun]) -> str:
    first = runs[0].engine
    rows = [
        f"| `{r.path}` | {r.sent:,}{'' if r.finished else ' (stopped)'} "
        f"| {'yes' if r.exactly_once else '**no**'} "
        f"| {r.rate:.0f}/s | **{r.ratio:.3f}** | {r.sink['count_429']} "
        f"| **{r.cpu_ms:.2f} ms** | {r.first_ms:.0f} ms "
        f"| {'PASS' if r.ok else 'FAIL'} |"
        for r in runs
    ]
    return "\n".join(
        [
            "# briefbot paid-broadcast benchmark",
            "",
            f"Command: `{command}`",
            "",
            f"{runs[0].subscribers:,} private subscribers, one message each, "
            f"`max_messages_per_second: {RATE:g}` with `paid_broadcast: true` (burst "
            f"{first['burst']:g}, {first['in_flight']} in flight). The sink (bench/sink.py, "
            "its own process) allows 1,000/s for paid broadcasts and 1/s per chat and "
            "answers 429 beyond. *Rate*: (messages - 1) / first to last accepted; "
            "*÷ allowed*: / 1,000. *CPU*: the engine process's CPU time from "
            "`broadcast_now` to the end / messages. *Exactly once*: every subscriber "
            "counted once at the sink and the engine recorded as many. A path that has not "
            "finished after twice the time 1,000/s needs (+10 s) is stopped there "
            "(*stopped*) and measured on what it sent.",
            "",
            "| Path | Sent | Exactly once | Rate | ÷ allowed | 429s | CPU per message "
            "| First message | Result |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Targets: ÷ allowed >= {RATIO_TARGET}, 0 x 429, <= {CPU_TARGET_MS} ms CPU per "
            "message.",
            "",
        ]
    )
