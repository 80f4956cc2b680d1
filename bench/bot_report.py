"""What ``bench.bench_bot`` measured and its Markdown report: start-up and RSS, every series
per path, and one summary row per path against the targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.common import percentile

JSONDict = dict[str, Any]
KB_PER_MB = 1024
RSS_TARGET_MB = 150
P95_TARGET_MS = 50.0
CPU_TARGET_MS = 2.0


class Started(Protocol):
    """A bot process as the report reads it (bench_bot.BotProcess)."""

    ready: JSONDict
    ready_s: float
    stopped: JSONDict


@dataclass
class Series:
    """The replies to one command at one level of concurrency, on one path."""

    path: str
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

    def cpu_ms(self) -> float:
        return self.bot_cpu_s * 1000 / max(1, len(self.raw_ms))


@dataclass
class Report:
    command: str
    years: int
    items: int
    gen_s: float
    first: Started
    restarts: dict[str, Started]  # path -> the process that served its series
    series: list[Series]
    texts: tuple[str, ...]  # what /date cycles through
    runs: int
    single_per_round: int
    chats: int
    skipped: list[str] = field(default_factory=list)  # paths not run, and why
    bench_rss_kb: int = 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt3(values: Sequence[float]) -> str:
    return f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} / {max(values):.1f}"


def mb(kb: int) -> str:
    return f"{kb / KB_PER_MB:.1f} MB"


def startup_rows(r: Report) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    starts = [("first start (empty db)", r.first)]
    starts += [(f"restart (index built), {path}", bot) for path, bot in r.restarts.items()]
    for label, bot in starts:
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
    rows.append(
        (
            "bot peak RSS, first start (builds the index, no requests)",
            mb(first_kb),
            f"<= {RSS_TARGET_MB} MB",
            verdict(first_kb <= RSS_TARGET_MB * KB_PER_MB),
        )
    )
    for path, bot in r.restarts.items():
        serve_kb = int(bot.stopped["rss_kb"])
        rows.append(
            (
                f"bot peak RSS, {path}: restart + every request below",
                f"{mb(serve_kb)} (after startup: {mb(int(bot.ready['rss_kb']))})",
                f"<= {RSS_TARGET_MB} MB",
                verdict(serve_kb <= RSS_TARGET_MB * KB_PER_MB),
            )
        )
    rows.append(("bench process peak RSS (servers, generator)", mb(r.bench_rss_kb), "", ""))
    return [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]


def series_row(s: Series) -> str:
    replies = f"{len(s.raw_ms)}" + (f" (**{s.failed} failed**)" if s.failed else "")
    head = f"| {s.path} | `{s.command}` | {s.chats} | {replies} "
    if not s.raw_ms:
        return head + "| - " * 6 + "| FAIL |"
    excl = s.latencies(exclude_waits=True)
    result = ""
    if s.chats > 1:
        result = verdict(percentile(excl, 95) <= P95_TARGET_MS and not s.failed)
    return (
        head + f"| {'/'.join(str(p) for p in sorted(s.parts))} "
        f"| {fmt3(s.latencies(exclude_waits=False))} | {percentile(s.delivery_ms, 95):.1f} "
        f"| {percentile(s.waits(), 95):.1f} | {s.cpu_ms():.2f} "
        f"| {fmt3(excl)} | {result} |"
    )


def summary_rows(r: Report) -> list[str]:
    """Per path: CPU per reply (all series, and the 50-chat ones) and the worst 50-chat p95."""
    rows = []
    for path in r.restarts:
        mine = [s for s in r.series if s.path == path and s.raw_ms]
        crowd = [s for s in mine if s.chats > 1]
        if not mine or not crowd:
            continue
        replies = sum(len(s.raw_ms) for s in mine)
        cpu_all = sum(s.bot_cpu_s for s in mine) * 1000 / replies
        cpu_crowd = sum(s.bot_cpu_s for s in crowd) * 1000 / sum(len(s.raw_ms) for s in crowd)
        worst = max(percentile(s.latencies(exclude_waits=True), 95) for s in crowd)
        failed = sum(s.failed for s in mine)
        rows.append(
            f"| {path} | {cpu_all:.2f} | {cpu_crowd:.2f} "
            f"| {verdict(cpu_crowd <= CPU_TARGET_MS and not failed)} | {worst:.1f} "
            f"| {verdict(worst <= P95_TARGET_MS and not failed)} |"
        )
    return rows


def render(r: Report) -> str:
    dates = ", ".join(f"`{t}`" for t in r.texts)
    return "\n".join(
        [
            "# briefbot bot benchmark",
            "",
            f"Command: `{r.command}`",
            "",
            f"{r.years} years, {r.items:,} items (archive generated in {r.gen_s:.1f} s). "
            "A fake Bot API server per path in the bench process (fakebot/, rate limits off, "
            "127.0.0.1); each bot in a process of its own, wired by "
            "bot.telegram.app.build_application, getting updates by long polling "
            "(`getUpdates`, poll_interval=0). Paths: `httpx` = the bot as it was (PTB's "
            "HTTPXRequest, `telegram.http: httpx`, `send_message` building a Message from each "
            "answer); `aiohttp` = bot/telegram/request.py instead; `+lean` = replies through "
            "`ReplyBot.send_text` (no Message built: the bot now); `+uvloop` = on uvloop's "
            "event loop." + (f" Not run: {'; '.join(r.skipped)}." if r.skipped else ""),
            "",
            "| Measure | Value | Target | Result |",
            "|---|---|---|---|",
            *startup_rows(r),
            "",
            f"Per path: bot CPU per reply over every series, and over the {r.chats}-chat series "
            f"(target <= {CPU_TARGET_MS:.0f} ms); the worst {r.chats}-chat p95 latency without "
            f"the limiter wait (target <= {P95_TARGET_MS:.0f} ms).",
            "",
            f"| Path | CPU/reply, all | CPU/reply, {r.chats} chats | Target | "
            f"worst p95 excl. wait, {r.chats} chats | Target |",
            "|---|---|---|---|---|---|",
            *summary_rows(r),
            "",
            "Reply latency in ms, p50 / p95 / max: from pushing a user's update into the fake "
            "server to the server recording the reply's last `sendMessage`. Every request comes "
            "from a new private chat; 1 chat = one request in flight at a time "
            f"({r.single_per_round * r.runs} per command), {r.chats} chats = {r.chats} at once, "
            f"{r.runs} rounds; `/date` cycles through {dates}. *Limiter wait* is the time a "
            "reply spent queued in the bot's AIORateLimiter (a deliberate 30 messages/s "
            "overall); the target applies without it. *Delivery*: from the push until the "
            "fake server answered the bot's `getUpdates` with the update (part of the "
            "latency). *CPU/reply* (ms): the bot process's CPU time (all threads) over the "
            "series, per reply.",
            "",
            "| Path | Command | Chats | Replies | Msgs/reply | Latency | Delivery p95 "
            "| Limiter wait p95 | CPU/reply | Latency excl. limiter wait | p95 <= 50 ms |",
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
