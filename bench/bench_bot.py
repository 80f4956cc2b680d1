"""Benchmark the Telegram bot end to end: reply latency through the fake Bot API server, and RSS.

Usage: ``python -m bench.bench_bot [--years 20] [--runs 10] [--out FILE]``

Generates the synthetic archive in a temporary directory and starts the fake Bot API server
(fakebot/, rate limits off) in this process. The bot runs in a child process of its own,
wired by ``bot.app.build_application`` exactly as ``briefbot run`` wires it, and gets its
updates by long polling, as in production. A reply's latency runs from pushing the user's
update into the fake server to the server recording the reply's last ``sendMessage``.

The child is started twice: on an empty database (the first start builds the index) and
again on the built one (a restart); the second serves every request. Its peak RSS is its own
``VmHWM``, so the generator and this process do not count.

Each request comes from a new private chat. With one chat, requests go one at a time; with
50, fifty go at once, round after round. The bot's AIORateLimiter (30 messages a second) is
kept; the child records how long each reply waited in it, and the target is judged on the
latency without that deliberate wait.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from telegram import Update
from telegram.ext import AIORateLimiter

from bench.common import peak_rss_kb, percentile
from bench.gen_archive import ISSUE_SUFFIX, generate
from bot.config import parse_config
from bot.logs import setup_logging
from bot.telegram.app import build_application

if TYPE_CHECKING:  # the bot process must not load the fake server (its RSS is measured)
    from fakebot import FakeBotAPI

REPO = Path(__file__).resolve().parents[1]
KB_PER_MB = 1024
RSS_TARGET_MB = 150
P95_TARGET_MS = 50.0
CHATS = 50
SINGLE_PER_ROUND = 5  # one-chat requests per command = SINGLE_PER_ROUND x --runs
TOKEN_ENV = "BENCH_BOT_TOKEN"  # how the bot process gets the fake server's token
TIMEOUT = 60.0  # seconds to wait for replies before giving up
SETTLE = 0.3  # seconds without a new message after which a warm-up reply is complete

START_YEAR = 2000  # gen_archive's default: one issue a day from 2000-01-01


@dataclass(frozen=True)
class Command:
    label: str
    texts: tuple[str, ...]  # sent in turn
    issue: bool  # the reply is an issue (else a page of search results)


def commands(years: int) -> tuple[Command, ...]:
    """What the users send: dates that exist in the synthetic archive, in several forms."""
    last, mid, early = (START_YEAR + years - 1, START_YEAR + years // 2, START_YEAR + years // 4)
    dates = (f"{last}-02-14", f"{mid}.06.30", f"{early}年8月8日", f"{START_YEAR}0303")
    year = START_YEAR + min(15, years - 1)
    return (
        Command(f"/date {dates[0]} (+{len(dates) - 1})", tuple(f"/date {d}" for d in dates), True),
        Command("/find 小米", ("/find 小米",), False),
        Command(f"/find 芯片 {year}", (f"/find 芯片 {year}",), False),
        Command("/latest", ("/latest",), True),
    )


JSONDict = dict[str, Any]
Callback = Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen backlog was full."""
    with contextlib.suppress(OSError, ValueError):
        lines = Path("/proc/net/netstat").read_text().splitlines()
        for names, values in itertools.pairwise(lines):
            if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
                return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the bot process -----------------------------------------------------------------------


class TimedLimiter(AIORateLimiter):
    """The bot's own AIORateLimiter, also noting how long each chat's requests waited in it.

    The wait is deliberate (30 messages a second overall), so the report shows latency with
    and without it."""

    __slots__ = ()
    waits: ClassVar[dict[int, float]] = defaultdict(float)  # chat id -> seconds

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        entered = time.perf_counter()
        released = [entered]

        async def timed(*a: Any, **kw: Any) -> bool | JSONDict | list[JSONDict]:
            released[0] = time.perf_counter()
            return await callback(*a, **kw)

        try:
            return await super().process_request(
                timed, args, kwargs, endpoint, data, rate_limit_args
            )
        finally:
            chat_id = data.get("chat_id")
            if isinstance(chat_id, int):
                TimedLimiter.waits[chat_id] += released[0] - entered


class _Mark(logging.Handler):
    """When bot.app logged the end of the index sync (it logs it once the sync is done)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.synced: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("index:"):
            self.synced = time.perf_counter()


def say(event: JSONDict) -> None:
    print(json.dumps(event), flush=True)


async def serve_bot(api_url: str, content: Path, db: Path) -> None:
    """Run only the bot, polling ``api_url``, until a line (or EOF) arrives on stdin."""
    token = os.environ[TOKEN_ENV]
    setup_logging("WARNING", [token])
    mark = _Mark()
    logging.getLogger("bot.telegram.app").addHandler(mark)
    logging.getLogger("bot.telegram.app").setLevel(logging.INFO)
    raw = {
        "content": {"dir": str(content), "reload_seconds": 0},
        "storage": {"path": str(db)},
        "telegram": {"api_base_url": api_url},
    }
    config = parse_config(raw, db.parent)
    t0 = time.perf_counter()
    app = build_application(config, token)
    limiter = app.bot.rate_limiter
    assert isinstance(limiter, AIORateLimiter) and app.post_init and app.updater
    limiter.__class__ = TimedLimiter  # same instance and limits, plus the wait log
    t1 = time.perf_counter()
    await app.initialize()
    t2 = time.perf_counter()
    await app.post_init(app)
    t3 = time.perf_counter()
    await app.updater.start_polling(poll_interval=0, allowed_updates=Update.ALL_TYPES)
    await app.start()
    t4 = time.perf_counter()
    say(
        {
            "event": "ready",
            "build_s": t1 - t0,
            "initialize_s": t2 - t1,
            "post_init_s": t3 - t2,
            "sync_s": (mark.synced or t3) - t2,
            "start_s": t4 - t3,
            "rss_kb": peak_rss_kb(),
        }
    )
    await asyncio.to_thread(sys.stdin.readline)
    rss_kb = peak_rss_kb()
    await app.updater.stop()
    await app.stop()
    if app.post_shutdown:
        await app.post_shutdown(app)
    await app.shutdown()
    waits = {str(chat): round(s * 1000, 3) for chat, s in TimedLimiter.waits.items()}
    say({"event": "stopped", "rss_kb": rss_kb, "waits_ms": waits})


@dataclass
class BotProcess:
    """The child process running the bot, and what it reported."""

    proc: asyncio.subprocess.Process
    spawned: float
    ready: JSONDict = field(default_factory=dict)
    ready_s: float = 0.0  # process start to polling, imports included
    stopped: JSONDict = field(default_factory=dict)

    @classmethod
    async def start(cls, server: FakeBotAPI, content: Path, db: Path) -> BotProcess:
        spawned = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bench_bot",
            "--serve-bot",
            server.url,
            str(content),
            str(db),
            cwd=REPO,
            env={**os.environ, TOKEN_ENV: server.token},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**24,  # the last report is one long JSON line
        )
        bot = cls(proc, spawned)
        try:
            bot.ready = await bot._event("ready", timeout=600)
        except BaseException:
            bot.kill()
            raise
        bot.ready_s = time.perf_counter() - spawned
        return bot

    async def _event(self, name: str, timeout: float) -> JSONDict:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the bot process exited (code {await self.proc.wait()})")
        event: JSONDict = json.loads(line)
        if event.get("event") != name:
            raise RuntimeError(f"expected {name!r} from the bot process, got {event}")
        return event

    def peak_rss_kb(self) -> int:
        return peak_rss_kb(self.proc.pid)

    async def stop(self) -> JSONDict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        try:
            self.stopped = await self._event("stopped", timeout=60)
        except BaseException:
            self.kill()
            raise
        await self.proc.wait()
        return self.stopped

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


# -- driving it ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    chat_id: int
    update_id: int
    text: str
    sent_at: float  # time.time(), the clock the fake server stamps its calls with


@dataclass
class Series:
    """The replies to one command at one level of concurrency."""

    command: str
    chats: int
    raw_ms: dict[int, float] = field(default_factory=dict)  # chat id -> latency
    delivery_ms: list[float] = field(default_factory=list)  # push to getUpdates answered
    parts: set[int] = field(default_factory=set)  # messages per reply
    failed: int = 0  # replies that were not the expected ones (left out of the figures)
    waits_ms: dict[int, float] = field(default_factory=dict)  # chat id -> limiter wait
    bot_rss_kb: int = 0  # the bot's peak RSS when the series ended
    bot_cpu_s: float = 0.0  # CPU time the bot process used during the series
    overflows: int = 0  # TCP listen overflows (system-wide) during the series

    def latencies(self, exclude_waits: bool) -> list[float]:
        if not exclude_waits:
            return list(self.raw_ms.values())
        return [ms - self.waits_ms.get(chat, 0.0) for chat, ms in self.raw_ms.items()]

    def waits(self) -> list[float]:
        return [self.waits_ms.get(chat, 0.0) for chat in self.raw_ms]


class Driver:
    """Sends commands as users through the fake server and times the bot's replies.

    Every request comes from a new private chat, so the bot's per-user flood throttle (8
    commands in 10 s by default) never trips and its config stays the default."""

    def __init__(self, server: FakeBotAPI) -> None:
        self.server = server
        self.chat_ids = itertools.count(10_000_001)
        self.replies: dict[str, list[str]] = {}  # command text -> the reply's HTML messages

    def push(self, text: str) -> Request:
        chat_id = next(self.chat_ids)
        sent_at = time.time()
        update = self.server.push_message(chat_id, text)
        return Request(chat_id, int(update["update_id"]), text, sent_at)

    async def learn(self, command: Command, text: str) -> None:
        """Send ``text`` once, unmeasured: warms the bot up and counts its reply's messages."""
        request = self.push(text)
        await asyncio.to_thread(self.server.wait_sent, 1, request.chat_id, TIMEOUT)
        count = 0
        while count != len(self.server.messages_to(request.chat_id)):
            count = len(self.server.messages_to(request.chat_id))
            await asyncio.sleep(SETTLE)
        reply = self.server.messages_to(request.chat_id)
        # An issue, or a results page with a "next page" button: not "no such issue" or usage.
        if not (ISSUE_SUFFIX in reply[0].text if command.issue else reply[-1].callback_data):
            raise RuntimeError(f"unexpected reply to {text!r}: {reply[0].text[:200]!r}")
        self.replies[text] = [m.params["text"] for m in reply]
        first = reply[0].text.replace("\n", " ")
        log(f"  {text!r}: {count} message(s): {first[:70]}…")

    async def wait_for(self, requests: Sequence[Request]) -> None:
        expected = len(self.server.sent) + sum(len(self.replies[r.text]) for r in requests)
        await asyncio.to_thread(self.server.wait_sent, expected, None, TIMEOUT)

    async def single(self, series: Series, texts: Sequence[str], count: int) -> None:
        """One request in flight at a time."""
        requests = []
        for i in range(count):
            requests.append(self.push(texts[i % len(texts)]))
            await self.wait_for(requests[-1:])
        self.collect(series, requests)

    async def concurrent(self, series: Series, texts: Sequence[str], rounds: int) -> None:
        """``series.chats`` chats send at once; the next round starts when all are answered."""
        requests = []
        for _ in range(rounds):
            batch = [self.push(texts[i % len(texts)]) for i in range(series.chats)]
            await self.wait_for(batch)
            requests += batch
        self.collect(series, requests)

    def collect(self, series: Series, requests: Sequence[Request]) -> None:
        """Latency per request: until the fake server recorded the reply's last message.
        A reply that differs from the warm-up's (an apology after an error) counts as failed."""
        sent: dict[int, list[tuple[float, str]]] = defaultdict(list)
        for call in self.server.calls("sendMessage"):
            if call.ok:
                sent[int(call.params["chat_id"])].append((call.time, call.params["text"]))
        delivered: dict[int, float] = {}
        for call in self.server.calls("getUpdates"):
            for update in call.result or () if call.ok else ():
                delivered.setdefault(update["update_id"], call.time)
        for r in requests:
            got, want = sent[r.chat_id], self.replies[r.text]
            if [text for _, text in got] != want:
                series.failed += 1
                continue
            series.raw_ms[r.chat_id] = (got[-1][0] - r.sent_at) * 1000
            series.delivery_ms.append((delivered[r.update_id] - r.sent_at) * 1000)
            series.parts.add(len(want))
        self.server.clear()  # keeps the server's lists, which waiting scans, short


# -- one benchmark -------------------------------------------------------------------------


@dataclass
class Report:
    command: str
    years: int
    items: int
    gen_s: float
    first: BotProcess
    restart: BotProcess
    series: list[Series]
    bench_rss_kb: int = 0


async def observe(bot: BotProcess, series: Series, work: Awaitable[None]) -> Series:
    """Run ``work``, noting the bot's CPU time, its peak RSS and the listen overflows."""
    cpu, overflows = cpu_seconds(bot.proc.pid), listen_overflows()
    await work
    series.bot_cpu_s = cpu_seconds(bot.proc.pid) - cpu
    series.overflows = listen_overflows() - overflows
    series.bot_rss_kb = bot.peak_rss_kb()
    return series


async def measure(server: FakeBotAPI, bot: BotProcess, years: int, runs: int) -> list[Series]:
    driver = Driver(server)
    log("warming up (one unmeasured request per command text)")
    for command in commands(years):
        for text in command.texts:
            await driver.learn(command, text)
    server.clear()
    out = []
    for command in commands(years):
        name, texts = command.label, command.texts
        log(f"{name}: {SINGLE_PER_ROUND * runs} requests, one chat at a time")
        single = Series(name, 1)
        out.append(
            await observe(bot, single, driver.single(single, texts, SINGLE_PER_ROUND * runs))
        )
        log(f"{name}: {runs} rounds of {CHATS} chats at once, after one unmeasured round")
        # The unmeasured round lets the bot's HTTP pool open its connections first: the fake
        # server listens with socketserver's backlog of 5, and a burst of new connections to
        # it loses SYNs, which TCP retries after a second.
        await driver.concurrent(Series(name, CHATS), texts, 1)
        crowd = Series(name, CHATS)
        out.append(await observe(bot, crowd, driver.concurrent(crowd, texts, runs)))
    return out


async def run_bench(command: str, years: int, runs: int, work: Path) -> Report:
    from fakebot import fake_bot_api  # here, not at the top: see TYPE_CHECKING above

    content, db = work / "content", work / "bot.sqlite3"
    log(f"generating {years} years of archive in {content}")
    started = time.perf_counter()
    items = generate(content, years)
    gen_s = time.perf_counter() - started
    log(f"{items:,} items in {gen_s:.1f} s")
    with fake_bot_api(rate_limits=False) as server:
        log("first start: the bot builds the index from scratch")
        first = await BotProcess.start(server, content, db)
        await first.stop()
        server.clear()
        log("restart: the index is up to date")
        restart = await BotProcess.start(server, content, db)
        try:
            series = await measure(server, restart, years, runs)
        finally:
            stopped = await restart.stop()
    for s in series:
        s.waits_ms = {int(chat): ms for chat, ms in stopped["waits_ms"].items()}
    return Report(command, years, items, gen_s, first, restart, series, peak_rss_kb())


# -- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt3(values: Sequence[float]) -> str:
    return f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} / {max(values):.1f}"


def mb(kb: int) -> str:
    return f"{kb / KB_PER_MB:.1f} MB"


def startup_rows(r: Report) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    for label, bot in (("first start (empty db)", r.first), ("restart (index built)", r.restart)):
        ready = bot.ready
        rows.append(
            (
                f"{label}: initialize + post_init",
                f"{ready['initialize_s'] + ready['post_init_s']:.2f} s (index sync "
                f"{ready['sync_s']:.2f} s; process start to polling {bot.ready_s:.2f} s)",
                "",
                "",
            )
        )
    first_kb = int(r.first.stopped["rss_kb"])
    serve_kb = int(r.restart.stopped["rss_kb"])
    rows += [
        (
            "bot peak RSS, first start (builds the index, no requests)",
            mb(first_kb),
            f"<= {RSS_TARGET_MB} MB",
            verdict(first_kb <= RSS_TARGET_MB * KB_PER_MB),
        ),
        (
            "bot peak RSS, restart + every request below",
            f"{mb(serve_kb)} (after startup: {mb(int(r.restart.ready['rss_kb']))})",
            f"<= {RSS_TARGET_MB} MB",
            verdict(serve_kb <= RSS_TARGET_MB * KB_PER_MB),
        ),
        ("bench process peak RSS (server, generator)", mb(r.bench_rss_kb), "", ""),
    ]
    return [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]


def series_row(s: Series) -> str:
    replies = f"{len(s.raw_ms)}" + (f" (**{s.failed} failed**)" if s.failed else "")
    head = f"| `{s.command}` | {s.chats} | {replies} "
    if not s.raw_ms:
        return head + "| - " * 7 + "| FAIL |"
    excl = s.latencies(exclude_waits=True)
    target = result = ""
    if s.chats > 1:
        target = f"p95 <= {P95_TARGET_MS:.0f} ms"
        result = verdict(percentile(excl, 95) <= P95_TARGET_MS and not s.failed)
    return (
        head + f"| {'/'.join(str(p) for p in sorted(s.parts))} "
        f"| {fmt3(s.latencies(exclude_waits=False))} | {percentile(s.delivery_ms, 95):.1f} "
        f"| {percentile(s.waits(), 95):.1f} | {s.bot_cpu_s * 1000 / len(s.raw_ms):.1f} "
        f"| {fmt3(excl)} | {target} | {result} |"
    )


def render(r: Report, runs: int) -> str:
    return "\n".join(
        [
            "# briefbot bot benchmark",
            "",
            f"Command: `{r.command}`",
            "",
            f"{r.years} years, {r.items:,} items (archive generated in {r.gen_s:.1f} s). "
            "Fake Bot API server in the bench process (fakebot/, rate limits off, "
            "127.0.0.1); the bot in a process of its own, wired by bot.app.build_application, "
            "getting updates by long polling (`getUpdates`, poll_interval=0).",
            "",
            "| Measure | Value | Target | Result |",
            "|---|---|---|---|",
            *startup_rows(r),
            "",
            "Reply latency in ms, p50 / p95 / max: from pushing a user's update into the fake "
            "server to the server recording the reply's last `sendMessage`. Every request comes "
            "from a new private chat; 1 chat = one request in flight at a time "
            f"({SINGLE_PER_ROUND * runs} per command), {CHATS} chats = {CHATS} at once, "
            f"{runs} rounds; `/date` cycles through "
            f"{', '.join(f'`{t}`' for t in commands(r.years)[0].texts)}. *Limiter wait* is the time a reply spent queued in the bot's "
            "AIORateLimiter (a deliberate 30 messages/s overall); the target applies without it. "
            "*Delivery*: from the push until the fake server answered the bot's `getUpdates` "
            "with the update (part of the latency). *Bot CPU/reply*: the bot process's CPU time "
            "(all threads) over the series, per reply.",
            "",
            "| Command | Chats | Replies | Msgs/reply | Latency | Delivery p95 | Limiter wait p95 "
            "| Bot CPU/reply | Latency excl. limiter wait | Target | Result |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *(series_row(s) for s in r.series),
            "",
            "Bot peak RSS after each series above: "
            + ", ".join(f"{s.bot_rss_kb / KB_PER_MB:.0f}" for s in r.series)
            + " MB. TCP listen overflows (system-wide, each one a connection delayed by a "
            "second) during the measured series: "
            + ", ".join(str(s.overflows) for s in r.series)
            + ".",
            "",
        ]
    )


# -- entry point ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_bot",
        description="Benchmark the bot's reply latency and RSS through the fake Bot API "
        "server. Example: python -m bench.bench_bot --years 20 --runs 10",
    )
    parser.add_argument("--years", type=int, default=20, help="archive size (default 20)")
    parser.add_argument(
        "--runs",
        type=int,
        default=10,
        help=f"rounds of {CHATS} chats at once per command, and {SINGLE_PER_ROUND}x as many "
        "one-chat requests (default 10)",
    )
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--serve-bot", nargs=3, metavar="X", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.serve_bot is not None:
        api_url, content, db = args.serve_bot
        asyncio.run(serve_bot(api_url, Path(content), Path(db)))
        return 0
    if args.years < 1 or args.runs < 1:
        print("error: --years and --runs must be at least 1", file=sys.stderr)
        return 2
    command = " ".join(["python -m bench.bench_bot", *argv])
    with tempfile.TemporaryDirectory(prefix="briefbot-bench-bot-") as tmp:
        report = asyncio.run(run_bench(command, args.years, args.runs, Path(tmp)))
    text = render(report, args.runs)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
