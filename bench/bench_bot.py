"""Benchmark the Telegram bot end to end: reply latency, CPU per reply and RSS, for each of
python-telegram-bot's HTTP layers side by side.

Usage: ``python -m bench.bench_bot [--years 20] [--runs 10] [--paths httpx,aiohttp,...]
[--out FILE] [--profile DIR]``

Generates the synthetic archive in a temporary directory. The bot runs in a child process of
its own, wired by ``bot.telegram.app.build_application`` exactly as ``briefbot run`` wires
it, and gets its updates by long polling, as in production. A reply's latency runs from
pushing the user's update into a fake Bot API server (fakebot/, rate limits off, in this
process) to the server recording the reply's last ``sendMessage``.

The first child builds the index on an empty database. Then one child per *path* starts on
a copy of the built database, each polling a fake server of its own: ``httpx`` (the bot as
it was: PTB's ``HTTPXRequest``, ``telegram.http: httpx``, and ``send_message`` building a
Message from every answer), ``aiohttp`` (``bot/telegram/request.py`` instead),
``aiohttp+lean`` (plus ``ReplyBot.send_text``: what the bot does now) and
``aiohttp+lean+uvloop`` (the same on uvloop's event loop, when uvloop is installed). The
series run command by command, each path in turn, so every path meets the same load. CPU is the bot process's own (``/proc/PID/stat``, all threads): the fake
servers and this process do not count. Peak RSS is the child's ``VmHWM``.

Each request comes from a new private chat. With one chat, requests go one at a time; with
50, fifty go at once, round after round. The bot's AIORateLimiter (30 messages a second) is
kept; the child records how long each reply waited in it, and the latency target is judged
without that deliberate wait.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.bot_child import PATHS, TOKEN_ENV
from bench.bot_report import Report, Series, render
from bench.common import peak_rss_kb
from bench.gen_archive import ISSUE_SUFFIX, generate

if TYPE_CHECKING:  # the bot process must not load the fake server (its RSS is measured)
    from fakebot import FakeBotAPI

REPO = Path(__file__).resolve().parents[1]
CHATS = 50
SINGLE_PER_ROUND = 5  # one-chat requests per command = SINGLE_PER_ROUND x --runs
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


@dataclass
class BotProcess:
    """The child process running the bot, and what it reported."""

    proc: asyncio.subprocess.Process
    spawned: float
    ready: JSONDict = field(default_factory=dict)
    ready_s: float = 0.0  # process start to polling, imports included
    stopped: JSONDict = field(default_factory=dict)

    @classmethod
    async def start(
        cls, server: FakeBotAPI, content: Path, db: Path, path: str, profile: Path | None = None
    ) -> BotProcess:
        spawned = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bot_child",
            server.url,
            str(content),
            str(db),
            path,
            str(profile or ""),
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


async def observe(bot: BotProcess, series: Series, work: Awaitable[None]) -> Series:
    """Run ``work``, noting the bot's CPU time, its peak RSS and the listen overflows."""
    cpu, overflows = cpu_seconds(bot.proc.pid), listen_overflows()
    await work
    series.bot_cpu_s = cpu_seconds(bot.proc.pid) - cpu
    series.overflows = listen_overflows() - overflows
    series.bot_rss_kb = bot.peak_rss_kb()
    return series


@dataclass
class Lane:
    """One path: its fake server, its bot process and its driver."""

    path: str
    server: FakeBotAPI
    bot: BotProcess
    driver: Driver


async def measure(lanes: Sequence[Lane], years: int, runs: int) -> list[Series]:
    """Every command, each path in turn (the same minutes for all of them)."""
    log("warming up (one unmeasured request per command text and path)")
    for lane in lanes:
        for command in commands(years):
            for text in command.texts:
                await lane.driver.learn(command, text)
        lane.server.clear()
    out = []
    for command in commands(years):
        name, texts = command.label, command.texts
        for lane in lanes:
            log(f"{lane.path} {name}: {SINGLE_PER_ROUND * runs} requests, one chat at a time")
            single = Series(lane.path, name, 1)
            work = lane.driver.single(single, texts, SINGLE_PER_ROUND * runs)
            out.append(await observe(lane.bot, single, work))
        for lane in lanes:
            log(f"{lane.path} {name}: {runs} rounds of {CHATS} chats at once, after one unmeasured")
            # The unmeasured round lets the bot's HTTP pool open its connections first: the
            # fake server listens with socketserver's backlog of 5, and a burst of new
            # connections to it loses SYNs, which TCP retries after a second.
            await lane.driver.concurrent(Series(lane.path, name, CHATS), texts, 1)
            crowd = Series(lane.path, name, CHATS)
            out.append(await observe(lane.bot, crowd, lane.driver.concurrent(crowd, texts, runs)))
    return out


def available(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The paths that can run here, and a note for each that cannot."""
    run, skipped = [], []
    for path in paths:
        if PATHS[path][1] == "uvloop" and importlib.util.find_spec("uvloop") is None:
            skipped.append(f"{path} (uvloop is not installed: pip install -e '.[fast]')")
        else:
            run.append(path)
    return run, skipped


async def run_bench(
    command: str, years: int, runs: int, paths: Sequence[str], work: Path, profile: Path | None
) -> Report:
    from fakebot import fake_bot_api  # here, not at the top: see TYPE_CHECKING above

    content, db = work / "content", work / "bot.sqlite3"
    log(f"generating {years} years of archive in {content}")
    started = time.perf_counter()
    items = generate(content, years)
    gen_s = time.perf_counter() - started
    log(f"{items:,} items in {gen_s:.1f} s")
    run, skipped = available(paths)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(fake_bot_api(rate_limits=False))
        log("first start: the bot builds the index from scratch")
        first = await BotProcess.start(server, content, db, "aiohttp")
        await first.stop()
        lanes: list[Lane] = []
        try:
            for path in run:
                log(f"restart on a copy of the built index: {path}")
                copy = work / f"bot-{path}.sqlite3"
                shutil.copyfile(db, copy)
                own = stack.enter_context(fake_bot_api(rate_limits=False))
                where = profile / f"{path}.prof" if profile else None
                bot = await BotProcess.start(own, content, copy, path, where)
                lanes.append(Lane(path, own, bot, Driver(own)))
            series = await measure(lanes, years, runs)
        finally:
            for lane in lanes:
                if lane.bot.proc.returncode is None:
                    await lane.bot.stop()
    for s in series:
        lane = next(lane for lane in lanes if lane.path == s.path)
        s.waits_ms = {int(chat): ms for chat, ms in lane.bot.stopped["waits_ms"].items()}
    return Report(
        command,
        years,
        items,
        gen_s,
        first,
        {lane.path: lane.bot for lane in lanes},
        series,
        commands(years)[0].texts,
        runs,
        SINGLE_PER_ROUND,
        CHATS,
        skipped,
        peak_rss_kb(),
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
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        help=f"comma-separated, run side by side (default and choices: {','.join(PATHS)})",
    )
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument(
        "--profile", type=Path, help="write each bot's cProfile to DIR/PATH.prof (slows it)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.years < 1 or args.runs < 1:
        print("error: --years and --runs must be at least 1", file=sys.stderr)
        return 2
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in paths if p not in PATHS]
    if unknown or not paths:
        print(f"error: --paths: choose from {', '.join(PATHS)}", file=sys.stderr)
        return 2
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    command = " ".join(["python -m bench.bench_bot", *argv])
    with tempfile.TemporaryDirectory(prefix="briefbot-bench-bot-") as tmp:
        report = asyncio.run(
            run_bench(command, args.years, args.runs, paths, Path(tmp), args.profile)
        )
    text = render(report)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
