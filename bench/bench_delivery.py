"""Benchmark the broadcast engine against the fake Bot API server enforcing Telegram's limits.

Usage: ``python -m bench.bench_delivery [--scale 5] [--seconds 25] [--out FILE]``, or
``python -m bench.bench_delivery --paid [--quick]`` for the paid-broadcast run (20,000
subscribers at 1,000 messages/s against bench/sink.py, each sending path side by side:
see bench/paid.py), or ``python -m bench.bench_delivery --corrections [--quick]`` for the
correction run (10,000 chats whose issue is corrected upstream and edited in place, against
bench/sink.py: see bench/corrections.py).

The fake server (fakebot/, rate limits on) runs in this process and answers 429 beyond
Telegram's limits: 30 messages/s overall, 1/s per private chat, 20/min per group. The engine
runs in a child process of its own, so the two do not share a GIL and the child's ``VmHWM``
is the engine's alone. The child is wired like ``briefbot broadcast``: a ``Archive`` on the
database, a ``Bot`` with a connection pool as wide as the engine's in-flight window, and
``DeliveryEngine`` with the limits ``limits_for`` gives the default config; it starts
the engine, then calls ``broadcast_now`` for the newest issue.

Both sides' rates are scaled by ``--scale K`` so a run is short, as if time ran K times
faster: the engine keeps 25 x K messages/s overall and 1 x K per private chat (bursts and the
in-flight window as configured), the fake allows 30 x K overall and 1 x K per chat.
Throughput is the number of messages the fake accepted divided by the time from the first to
the last of them (and, separately, from the call to ``broadcast_now``), compared with the
engine's allowed rate (target >= 0.95, no 429). K is 5 by default (125 messages/s), well
below what one process can send through python-telegram-bot and httpx: on a 2-core machine
it runs out of CPU at about 300 messages/s (about 3 ms each, nearly all of it in the HTTP
client), and beyond that the ratio measures the CPU, not the engine's pacing; the CPU column
shows it.

Every run uses a fresh database: a synthetic archive (bench.gen_archive, one year) and N
private chats inserted in one transaction. 1,000 and 10,000 subscribers run to the end; at
100,000 the broadcast runs for ``--seconds`` and is then stopped, to measure the time from
``broadcast_now`` to the first message and the engine's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import peak_rss_kb
from bench.gen_archive import generate
from bot.config import Delivery
from bot.core.pacing import Limits
from bot.db.archive import Archive
from bot.delivery.engine import DeliveryEngine, limits_for
from bot.logs import setup_logging
from bot.telegram.transport import PtbTransport

if TYPE_CHECKING:  # the engine process must not load the fake server (its RSS is measured)
    from fakebot import FakeBotAPI

REPO = Path(__file__).resolve().parents[1]
KB_PER_MB = 1024
RATE = 25.0  # the engine's default delivery.max_messages_per_second
FAKE_RATE = 30.0  # the fake server's overall limit (Telegram's)
RATIO_TARGET = 0.95
FIRST_TARGET_S = 1.0
RSS_TARGET_MB = 200
RSS_GROWTH_TARGET = 2.0  # peak RSS at 100k / at 10k, for 10x the subscribers
THROUGHPUT_RUNS = (1_000, 10_000)
BIG_RUN = 100_000
FIRST_CHAT = 100_000_001  # private chat ids (positive: the fake treats them as private)
TOKEN_ENV = "BENCH_DELIVERY_TOKEN"  # how the engine process gets the fake server's token


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def say(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def scaled_limits(scale: float) -> Limits:
    """The engine's limits for the default config (25 messages/s), time running ``scale``
    times faster: every rate multiplied, bursts and the in-flight window kept (the fake's
    round trips are also far shorter than Telegram's)."""
    limits = limits_for(Delivery(max_messages_per_second=RATE))
    return dataclasses.replace(
        limits,
        per_second=limits.per_second * scale,
        private_per_second=limits.private_per_second * scale,
        group_per_minute=limits.group_per_minute * scale,
    )


# -- the engine process --------------------------------------------------------------------


async def _wait_for_lease(engine: DeliveryEngine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not engine.sending:
        if time.monotonic() > deadline:
            raise RuntimeError("the engine did not take the delivery lease")
        await asyncio.sleep(0.01)


async def _outbox_sent(store: Archive, broadcast_id: int | None) -> int:
    """Messages the engine recorded as confirmed by Telegram."""
    value = await store.db.value(
        "SELECT count(*) FROM outbox WHERE status = 'sent' AND broadcast_id IS ?",
        [broadcast_id],
    )
    return int(value or 0)


async def serve_engine(api_url: str, db: Path, scale: float, seconds: float) -> None:
    """Open the store, start the engine, broadcast the newest issue to every subscriber and
    report on stdout; stop after ``seconds`` (0: once the broadcast finished)."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    token = os.environ[TOKEN_ENV]
    setup_logging("WARNING", [token])
    limits = scaled_limits(scale)
    store = await Archive.open(db)
    bot = Bot(
        token,
        base_url=f"{api_url}/bot",
        request=HTTPXRequest(connection_pool_size=limits.in_flight + 4),
    )
    engine = DeliveryEngine(store, PtbTransport(bot), Delivery(), limits=limits)
    async with bot:
        await engine.start()
        await _wait_for_lease(engine)
        idle_kb = peak_rss_kb()
        cpu0 = time.process_time()
        started = time.time()
        plan = await engine.broadcast_now(None, "cli")
        returned = time.time()
        enqueued_kb = peak_rss_kb()
        if seconds > 0:
            budget = max(0.0, started + seconds - time.time())
        else:  # to the end, with room for a slow run
            budget = 60 + 5 * plan.messages / limits.per_second
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(engine.wait(plan.broadcast_id, poll=0.2), budget)
        await engine.stop()
        cpu = time.process_time() - cpu0
    report = await engine.report(plan.broadcast_id) if plan.broadcast_id else None
    sent = await _outbox_sent(store, plan.broadcast_id)
    await store.close()
    say(
        {
            "started": started,
            "returned": returned,
            "chats": plan.chats,
            "messages": plan.messages,
            "finished": bool(report and report.finished),
            "sent": sent,
            "cpu_s": cpu,
            "idle_kb": idle_kb,
            "enqueued_kb": enqueued_kb,
            "peak_kb": peak_rss_kb(),
            "in_flight": limits.in_flight,
            "burst": limits.burst,
        }
    )


# -- one run, seen from the fake server ----------------------------------------------------


@dataclass
class Run:
    subscribers: int
    scale: float
    engine: dict[str, Any]  # what the engine process reported
    accepted: list[tuple[float, int]]  # (time, chat id) of each sendMessage the fake accepted
    first_call: float  # time of the first sendMessage call, whatever its answer
    count_429: int
    other_errors: int  # sendMessage answers other than 200 and 429
    server_cpu_s: float  # this process (the fake server) during the run

    @property
    def allowed(self) -> float:
        return RATE * self.scale

    @property
    def cap(self) -> float:
        return FAKE_RATE * self.scale

    @property
    def sent(self) -> int:
        return len(self.accepted)

    @property
    def started(self) -> float:
        return float(self.engine["started"])

    @property
    def span_s(self) -> float:
        """From the first to the last message the fake accepted."""
        return self.accepted[-1][0] - self.accepted[0][0] if self.sent > 1 else 0.0

    @property
    def rate(self) -> float:
        return (self.sent - 1) / self.span_s if self.span_s > 0 else 0.0

    @property
    def from_start_s(self) -> float:
        return self.accepted[-1][0] - self.started if self.accepted else 0.0

    @property
    def rate_from_start(self) -> float:
        return self.sent / self.from_start_s if self.from_start_s > 0 else 0.0

    @property
    def first_s(self) -> float:
        return self.first_call - self.started

    @property
    def duplicates(self) -> int:
        return self.sent - len({chat for _, chat in self.accepted})

    @property
    def complete(self) -> bool:
        """Every subscriber got the issue exactly once and the engine finished."""
        return (
            bool(self.engine["finished"])
            and self.sent == int(self.engine["messages"])
            and self.duplicates == 0
            and int(self.engine["sent"]) == self.sent
        )


async def prepare(db: Path, content: Path, subscribers: int) -> None:
    """A fresh database: the archive indexed and ``subscribers`` active private chats."""
    store = await Archive.open(db)
    try:
        await store.sync(content)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        async with store.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO chats (id, type, title, status, subscribed_at, last_slot)"
                " VALUES (?, 'private', ?, 'active', ?, ?)",
                [
                    (chat_id, f"User {chat_id}", now, now)
                    for chat_id in range(FIRST_CHAT, FIRST_CHAT + subscribers)
                ],
            )
    finally:
        await store.close()


def serve_fake(scale: float) -> FakeBotAPI:
    from fakebot import FakeBotAPI

    return FakeBotAPI(rate_limits=True, rate_scale=scale).start()


async def run_engine(server: FakeBotAPI, db: Path, scale: float, seconds: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_delivery",
        "--serve-engine",
        server.url,
        str(db),
        str(scale),
        str(seconds),
        cwd=REPO,
        env={**os.environ, TOKEN_ENV: server.token},
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    code = await proc.wait()
    if not line or code != 0:
        raise RuntimeError(f"the engine process failed (exit code {code})")
    event: dict[str, Any] = json.loads(line)
    return event


async def measure(work: Path, content: Path, subscribers: int, scale: float, seconds: float) -> Run:
    db = work / f"delivery-{subscribers}.sqlite3"
    started = time.perf_counter()
    await prepare(db, content, subscribers)
    log(f"{subscribers:,} subscribers: database ready in {time.perf_counter() - started:.1f} s")
    server = serve_fake(scale)
    try:
        cpu0 = time.process_time()
        engine = await run_engine(server, db, scale, seconds)
        cpu = time.process_time() - cpu0
        calls = server.calls("sendMessage")
        count_429 = server.count_429
    finally:
        server.stop()
    accepted = sorted((c.time, int(c.params["chat_id"])) for c in calls if c.status == 200)
    run = Run(
        subscribers,
        scale,
        engine,
        accepted,
        min((c.time for c in calls), default=float("nan")),
        count_429,
        sum(1 for c in calls if c.status not in (200, 429)),
        cpu,
    )
    log(
        f"{subscribers:,} subscribers: {run.sent:,} sent in {run.span_s:.1f} s "
        f"({run.rate:.0f}/s), {run.count_429} x 429, first after {run.first_s * 1000:.0f} ms"
    )
    return run


@dataclass
class Report:
    command: str
    scale: float
    seconds: float
    runs: list[Run]
    big: Run


async def run_bench(command: str, scale: float, seconds: float, work: Path) -> Report:
    content = work / "content"
    generate(content, 1)
    runs = [await measure(work, content, n, scale, 0) for n in THROUGHPUT_RUNS]
    big = await measure(work, content, BIG_RUN, scale, seconds)
    return Report(command, scale, seconds, runs, big)


# -- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def mb(kb: float) -> str:
    return f"{kb / KB_PER_MB:.1f} MB"


def throughput_row(r: Run) -> str:
    ratio, cap_ratio = r.rate / r.allowed, r.rate / r.cap
    start_ratio = r.rate_from_start / r.allowed
    ok = ratio >= RATIO_TARGET and r.count_429 == 0 and r.complete
    check = "yes" if r.complete else "**no**"
    refused = f"{r.count_429}" + (f" (+{r.other_errors} other errors)" if r.other_errors else "")
    return (
        f"| {r.subscribers:,} | {r.sent:,} | {check} | {r.span_s:.2f} s | {r.rate:.1f}/s "
        f"| **{ratio:.3f}** | {cap_ratio:.3f} | {r.from_start_s:.2f} s: {r.rate_from_start:.1f}/s "
        f"= {start_ratio:.3f} | {refused} | {r.first_s * 1000:.0f} ms "
        f"| {r.engine['cpu_s'] * 1000 / max(1, r.sent):.1f} / "
        f"{r.server_cpu_s * 1000 / max(1, r.sent):.1f} ms "
        f"| >= {RATIO_TARGET}, 0 x 429 | {verdict(ok)} |"
    )


def summary_rows(report: Report) -> list[str]:
    big = report.big
    ten = next(r for r in report.runs if r.subscribers == 10_000)
    e, e10 = big.engine, ten.engine
    growth = e["peak_kb"] / e10["peak_kb"]
    rows = [
        (
            f"time from `broadcast_now` called to the first message at the fake, "
            f"{big.subscribers:,} subscribers",
            f"{big.first_s * 1000:.0f} ms (`broadcast_now` returned after "
            f"{e['returned'] - e['started']:.2f} s, {e['messages']:,} messages enqueued)",
            f"< {FIRST_TARGET_S:.0f} s",
            verdict(big.first_s < FIRST_TARGET_S),
        ),
        (
            f"engine peak RSS (VmHWM), {big.subscribers:,} subscribers, "
            f"{report.seconds:.0f} s of broadcast",
            f"{mb(e['peak_kb'])} (idle before the broadcast {mb(e['idle_kb'])}, after "
            f"enqueueing {mb(e['enqueued_kb'])}; {big.sent:,} sent at {big.rate:.0f}/s, "
            f"{big.duplicates} twice, {big.count_429} x 429)",
            f"<= {RSS_TARGET_MB} MB",
            verdict(e["peak_kb"] <= RSS_TARGET_MB * KB_PER_MB),
        ),
        (
            f"engine peak RSS, {ten.subscribers:,} subscribers (whole broadcast)",
            f"{mb(e10['peak_kb'])} (idle {mb(e10['idle_kb'])})",
            "",
            "",
        ),
        (
            f"RSS growth {ten.subscribers:,} → {big.subscribers:,} subscribers (x"
            f"{big.subscribers // ten.subscribers})",
            f"x{growth:.2f} peak ({(e['peak_kb'] - e10['peak_kb']) / KB_PER_MB:+.1f} MB)",
            f"x < {RSS_GROWTH_TARGET:.0f}",
            verdict(growth < RSS_GROWTH_TARGET),
        ),
    ]
    return [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]


def render(report: Report) -> str:
    k = report.scale
    first = report.runs[0].engine
    return "\n".join(
        [
            "# briefbot delivery benchmark",
            "",
            f"Command: `{report.command}`",
            "",
            f"Scale K = {k:g}: the engine keeps {RATE:g} x K = {RATE * k:g} messages/s overall "
            f"(burst {first['burst']:g}, {first['in_flight']} in flight, as "
            f"`limits_for` sets them for the default 25/s) and {k:g}/s per private "
            f"chat; the fake server (fakebot/, in the bench process) allows {FAKE_RATE:g} x K = "
            f"{FAKE_RATE * k:g}/s overall and {k:g}/s per private chat, and answers 429 beyond. "
            f"The engine runs in a process of its own. Subscribers are private chats; the issue "
            f"(the newest of a synthetic archive) is one message per chat.",
            "",
            "*Rate* is (messages - 1) / the time from the first to the last message the fake "
            "accepted; the ratio in bold divides it by the engine's allowed rate "
            f"({RATE * k:g}/s), the next by the fake's cap ({FAKE_RATE * k:g}/s). *From start*: "
            "messages / the time from calling `broadcast_now` to the last one accepted. "
            "*Exactly once*: every subscriber got one message, none twice, and the engine "
            "recorded as many as the fake accepted. *CPU per message*: the engine process's CPU "
            "time (all threads) / the bench process's (the fake server), divided by the "
            "messages sent.",
            "",
            "| Subscribers | Sent | Exactly once | First → last | Rate | ÷ allowed | ÷ fake cap "
            "| From start | 429s | First message | CPU per message, engine / fake | Target | Result |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *(throughput_row(r) for r in report.runs),
            "",
            "| Measure | Value | Target | Result |",
            "|---|---|---|---|",
            *summary_rows(report),
            "",
        ]
    )


# -- entry point ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_delivery",
        description="Benchmark the broadcast engine against the fake Bot API server enforcing "
        "Telegram's limits. Example: python -m bench.bench_delivery --scale 5",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=5.0,
        help="multiply every rate limit, the engine's and the fake's, by K (default 5: "
        "125 messages/s)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=25.0,
        help=f"how long the {BIG_RUN:,}-subscriber broadcast runs before it is stopped "
        "(default 25)",
    )
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument(
        "--paid",
        action="store_true",
        help="instead: the paid-broadcast run, 20,000 subscribers at 1,000 messages/s, "
        "each sending path (aiohttp, httpx, PTB) side by side",
    )
    parser.add_argument(
        "--corrections",
        action="store_true",
        help="instead: the correction run, 10,000 chats whose issue is corrected upstream "
        "and edited in place",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="with --paid: 5,000 subscribers, aiohttp and PTB only; with --corrections: "
        "2,000 chats",
    )
    parser.add_argument("--serve-engine", nargs=4, metavar="X", help=argparse.SUPPRESS)
    parser.add_argument("--serve-paid", nargs=3, metavar="X", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.serve_engine is not None:
        api_url, db, scale, seconds = args.serve_engine
        asyncio.run(serve_engine(api_url, Path(db), float(scale), float(seconds)))
        return 0
    if args.serve_paid is not None:
        from bench.paid import engine_main

        engine_main(*args.serve_paid)
        return 0
    if args.scale <= 0 or args.seconds <= 0:
        print("error: --scale and --seconds must be positive", file=sys.stderr)
        return 2
    command = " ".join(["python -m bench.bench_delivery", *argv])
    with tempfile.TemporaryDirectory(prefix="briefbot-bench-delivery-") as tmp:
        if args.paid:
            from bench.paid import render_paid, run_paid

            text = render_paid(command, asyncio.run(run_paid(Path(tmp), args.quick)))
        elif args.corrections:
            from bench.corrections import render_corrections, run_corrections

            run = asyncio.run(run_corrections(Path(tmp), args.quick))
            text = render_corrections(command, run)
        else:
            text = render(asyncio.run(run_bench(command, args.scale, args.seconds, Path(tmp))))
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
