"""Benchmark the archive index against a naive LIKE scan and grep, on a synthetic archive.

Usage: ``python -m bench.bench_search [--years 20] [--big] [--out FILE]``

Generates the archive in a temporary directory, builds and re-syncs the index, times
``Archive.search`` per query class next to ``LIKE`` over ``items.plain`` and ``grep -r``, and
prints a Markdown report with PASS/FAIL against the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from bench.common import peak_rss_kb, percentile
from bench.gen_archive import generate
from bot.core.search import parse_query
from bot.db.archive import Archive

REPO = Path(__file__).resolve().parents[1]
WARMUP = 3
SMALL_ARCHIVE = 100_000  # items; the 2 ms / 20x targets apply up to this size
MB = 1024 * 1024

QUERY_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1-char CJK", ("芯", "车", "米")),
    ("2-char CJK", ("小米", "芯片", "英伟")),
    ("3+-char CJK", ("英伟达", "人工智能", "新能源汽车")),
    ("Latin word", ("deepseek", "openai", "gpu", "ai")),
    ("mixed", ("Qwen2.5-Max", "AT&T", "STM32U0", "RISC-V")),
    ("multi-term", ("AI 芯片", "小米 汽车")),
    ("date filter", ("小米 2015", "芯片 2010-03", "AI 2005-01..2006-12")),
    # Folded to the archive's Simplified / ASCII text (bot/core/fold.py); the LIKE scan
    # runs the folded terms, so its totals still check the index's.
    ("Traditional", ("台積電", "機器人", "英偉達", "新能源汽車")),
    ("full-width", ("ＡＩ", "ｄｅｅｐｓｅｅｋ", "ＲＩＳＣ－Ｖ", "５Ｇ")),
)
ALL_QUERIES = tuple(q for _, queries in QUERY_CLASSES for q in queries)
# --collapse: time searches as /find runs them (one hit per text, Archive.search(collapse=)).
COLLAPSE = False


@dataclass
class Build:
    items: int = 0
    issues: int = 0
    problems: int = 0
    full_s: float = 0.0
    open_ms: float = 0.0
    noop_ms: list[float] = field(default_factory=list)
    change_ms: list[float] = field(default_factory=list)
    noop_touched: list[int] = field(default_factory=list)  # issues each sync changed
    change_touched: list[int] = field(default_factory=list)
    db_bytes: int = 0
    wal_bytes: int = 0
    sync_rss_kb: int = 0  # peak RSS of the process that did the full build


@dataclass
class QueryTiming:
    query: str
    store_total: int
    like_total: int
    store_ms: list[float]
    like_ms: list[float]


@dataclass
class ClassTiming:
    name: str
    queries: list[QueryTiming]
    grep_c_ms: float
    grep_l_ms: float

    def store_ms(self) -> list[float]:
        return [t for q in self.queries for t in q.store_ms]

    def like_ms(self) -> list[float]:
        return [t for q in self.queries for t in q.like_ms]


@dataclass
class SizeReport:
    years: int
    build: Build
    classes: list[ClassTiming]
    search_rss_kb: int
    peak_rss_kb: int
    gen_s: float


async def elapsed_ms(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


# -- building ------------------------------------------------------------------------------


def append_item(path: Path) -> None:
    """Append one numbered item to the last issue of a month file, as an editor would."""
    text = path.read_text(encoding="utf-8")
    last = max(int(n) for n in re.findall(r"^(\d+)\. ", text, flags=re.MULTILINE))
    number = last + 1
    url = " " * (len(str(number)) + 2) + "https://mp.weixin.qq.com/s/benchmarkAppendedItem"
    extra = f"\n{number}. 基准测试追加条目：小米发布新一代芯片，DeepSeek 同步更新。\n\n{url}\n"
    path.write_text(text + extra, encoding="utf-8")


async def checkpointed_size(db_path: Path) -> tuple[int, int]:
    async with aiosqlite.connect(db_path) as conn:
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.stat().st_size, wal.stat().st_size if wal.exists() else 0


async def timed_sync(store: Archive, content: Path) -> tuple[float, int]:
    """Milliseconds for one sync, and how many issues it added, updated or removed."""
    started = time.perf_counter()
    report = await store.sync(content)
    ms = (time.perf_counter() - started) * 1000
    return ms, len(report.added) + len(report.updated) + len(report.removed)


def full_build(content: Path, db_path: Path, build: Build) -> None:
    """Build a fresh index in a fresh process, as the bot's first start would."""
    out = run_probe("--probe-sync", str(db_path), str(content))
    build.full_s, build.sync_rss_kb = float(out["seconds"]), int(out["rss_kb"])
    build.issues, build.problems = int(out["issues"]), int(out["problems"])


async def resyncs(content: Path, store: Archive, build: Build, changes: int) -> None:
    """Syncs with nothing changed, then each after appending an item to one month file."""
    for _ in range(changes):
        ms, touched = await timed_sync(store, content)
        build.noop_ms.append(ms)
        build.noop_touched.append(touched)
    files = sorted(content.rglob("newsflash-*.md"))
    for path in files[:: max(1, len(files) // changes)][:changes]:
        append_item(path)
        ms, touched = await timed_sync(store, content)
        build.change_ms.append(ms)
        build.change_touched.append(touched)


async def measure_build(content: Path, db_path: Path, changes: int = 5) -> Build:
    build = Build()
    full_build(content, db_path, build)
    started = time.perf_counter()
    store = await Archive.open(db_path)
    build.open_ms = (time.perf_counter() - started) * 1000
    try:
        await resyncs(content, store, build, changes)
        build.items = (await store.counts())[1]
    finally:
        await store.close()
    build.db_bytes, build.wal_bytes = await checkpointed_size(db_path)
    return build


# -- searching -----------------------------------------------------------------------------


def like_statements(query: str) -> tuple[str, str, list[str]]:
    """The naive scan for a query: every term as ``plain LIKE``, the date filter as a range."""
    parsed = parse_query(query)
    where = ["plain LIKE ? ESCAPE '\\'" for _ in parsed.terms]
    params = ["%" + re.sub(r"([\\%_])", r"\\\1", term) + "%" for term in parsed.terms]
    if parsed.period is not None:
        where.append("date BETWEEN ? AND ?")
        params += [parsed.period.start.isoformat(), parsed.period.end.isoformat()]
    cond = " AND ".join(where)
    page = f"SELECT date, number, plain FROM items WHERE {cond} ORDER BY date DESC LIMIT 10"
    return page, f"SELECT count(*) FROM items WHERE {cond}", params


async def like_search(conn: aiosqlite.Connection, query: str) -> int:
    page, count, params = like_statements(query)
    async with conn.execute(page, params) as cur:
        await cur.fetchall()
    async with conn.execute(count, params) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def timed_runs(action: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    for _ in range(WARMUP):
        await action()
    return [await elapsed_ms(action) for _ in range(runs)]


async def time_query(
    store: Archive, conn: aiosqlite.Connection, query: str, runs: int, like_runs: int
) -> QueryTiming:
    store_total = (await store.search(query, offset=0, limit=10, collapse=COLLAPSE)).total
    like_total = await like_search(conn, query)
    store_ms = await timed_runs(
        lambda: store.search(query, offset=0, limit=10, collapse=COLLAPSE), runs
    )
    like_ms = await timed_runs(lambda: like_search(conn, query), like_runs)
    return QueryTiming(query, store_total, like_total, store_ms, like_ms)


def grep_ms(content: Path, query: str, mode: str) -> float:
    """One ``grep -r`` over the files for the query's first word (grep has no date filter)."""
    term = next(t for t in query.split() if parse_query(t).terms)
    started = time.perf_counter()
    subprocess.run(
        ["grep", "-r", mode, "-i", "-F", "--", term, str(content)],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return (time.perf_counter() - started) * 1000


async def measure_search(
    content: Path, db_path: Path, runs: int, like_runs: int
) -> list[ClassTiming]:
    store = await Archive.open(db_path)
    try:
        async with aiosqlite.connect(db_path) as conn:
            out = []
            for name, queries in QUERY_CLASSES:
                timings = [await time_query(store, conn, q, runs, like_runs) for q in queries]
                grep_c, grep_l = (grep_ms(content, queries[0], m) for m in ("-c", "-l"))
                out.append(ClassTiming(name, timings, grep_c, grep_l))
            return out
    finally:
        await store.close()


# -- memory --------------------------------------------------------------------------------


async def probe_search(db_path: Path, runs: int) -> dict[str, float]:
    """The search process alone: open the store and run every query."""
    store = await Archive.open(db_path)
    try:
        for query in ALL_QUERIES:
            for offset in (0, 10, 20):
                await store.search(query, offset=offset, limit=10)
            for _ in range(runs):
                await store.search(query, offset=0, limit=10)
    finally:
        await store.close()
    return {"rss_kb": peak_rss_kb()}


async def probe_sync(db_path: Path, content: Path) -> dict[str, float]:
    """A full build in a fresh process: its time and peak RSS."""
    started = time.perf_counter()
    store = await Archive.open(db_path)
    try:
        report = await store.sync(content)
    finally:
        await store.close()
    return {
        "seconds": time.perf_counter() - started,
        "rss_kb": peak_rss_kb(),
        "issues": report.issues,
        "problems": len(report.problems),
    }


def run_probe(*args: str) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.bench_search", *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


# -- one archive size ----------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_size(work: Path, years: int, runs: int, like_runs: int | None) -> SizeReport:
    content, db_path = work / f"content-{years}y", work / f"index-{years}y.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    log(f"[{years} years] generating archive in {content}")
    started = time.perf_counter()
    items = generate(content, years)
    gen_s = time.perf_counter() - started
    log(f"[{years} years] {items:,} items in {gen_s:.1f} s; building the index")
    build = await measure_build(content, db_path)
    log(f"[{years} years] built in {build.full_s:.1f} s; timing searches")
    if like_runs is None:
        like_runs = runs if items <= SMALL_ARCHIVE else 10
    classes = await measure_search(content, db_path, runs, like_runs)
    log(f"[{years} years] measuring the search process")
    rss = int(run_probe("--probe-search", str(db_path), "--runs", str(runs))["rss_kb"])
    return SizeReport(years, build, classes, rss, peak_rss_kb(), gen_s)


# -- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_ms(values: Sequence[float]) -> str:
    return f"{percentile(values, 50):.2f} / {percentile(values, 95):.2f}"


def build_rows(r: SizeReport) -> list[str]:
    b, small = r.build, r.build.items <= SMALL_ARCHIVE
    change = percentile(b.change_ms, 50)
    full_target = "<= 15 s" if small else "-"
    size_mb = (b.db_bytes + b.wal_bytes) / MB
    rows = [
        ("items / issues", f"{b.items:,} / {b.issues:,} ({b.problems} problems)", "", ""),
        ("archive generation", f"{r.gen_s:.1f} s", "", ""),
        (
            "full index build (fresh db)",
            f"{b.full_s:.2f} s",
            full_target,
            verdict(b.full_s <= 15) if small else "",
        ),
        ("open existing store", f"{b.open_ms:.1f} ms", "", ""),
        (
            "re-index, nothing changed (median / max)",
            f"{percentile(b.noop_ms, 50):.0f} / {max(b.noop_ms):.0f} ms "
            f"(issues changed per sync: {b.noop_touched})",
            "",
            "",
        ),
        (
            "re-index, one month file changed (median / max)",
            f"{change:.0f} / {max(b.change_ms):.0f} ms "
            f"(issues changed per sync: {b.change_touched})",
            "<= 300 ms (median)",
            verdict(change <= 300),
        ),
        (
            "database size (db + wal, checkpointed)",
            f"{size_mb:.1f} MB ({b.db_bytes / MB:.1f} + {b.wal_bytes / MB:.1f})",
            "",
            "",
        ),
        (
            "search process peak RSS",
            f"{r.search_rss_kb / 1024:.1f} MB",
            "<= 150 MB",
            verdict(r.search_rss_kb <= 150 * 1024),
        ),
        ("full-build process peak RSS", f"{b.sync_rss_kb / 1024:.1f} MB", "", ""),
        ("bench process peak RSS so far", f"{r.peak_rss_kb / 1024:.1f} MB", "", ""),
    ]
    return [f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in rows]


def class_row(c: ClassTiming, small: bool) -> str:
    store, like = c.store_ms(), c.like_ms()
    s95, l95 = percentile(store, 95), percentile(like, 95)
    ratio = l95 / s95 if s95 else math.inf
    ok = s95 <= 2 and ratio >= 20 if small else s95 <= 20
    target = "p95 <= 2 ms, >= 20x" if small else "p95 <= 20 ms"
    return (
        f"| {c.name} | {fmt_ms(store)} | {fmt_ms(like)} | {ratio:.0f}x "
        f"| {c.grep_c_ms:.0f} / {c.grep_l_ms:.0f} | {target} | {verdict(ok)} |"
    )


def query_row(q: QueryTiming) -> str:
    agree = "yes" if q.store_total == q.like_total else "**no**"
    return (
        f"| `{q.query}` | {q.store_total:,} | {q.like_total:,} | {agree} "
        f"| {fmt_ms(q.store_ms)} | {fmt_ms(q.like_ms)} |"
    )


def render(r: SizeReport, runs: int) -> str:
    small = r.build.items <= SMALL_ARCHIVE
    like_runs = len(r.classes[0].queries[0].like_ms)
    return "\n".join(
        [
            f"## {r.years} years, {r.build.items:,} items",
            "",
            "| Measure | Value | Target | Result |",
            "|---|---|---|---|",
            *build_rows(r),
            "",
            f"Search latency, ms p50 / p95 (warm; store {runs} runs, LIKE {like_runs} runs per "
            "query; grep one run, first word, no date filter):",
            "",
            "| Class | store.search | naive LIKE | LIKE/store at p95 | grep -c / -l | Target "
            "| Result |",
            "|---|---|---|---|---|---|---|",
            *(class_row(c, small) for c in r.classes),
            "",
            "| Query | store total | LIKE total | agree | store p50 / p95 | LIKE p50 / p95 |",
            "|---|---|---|---|---|---|",
            *(query_row(q) for c in r.classes for q in c.queries),
            "",
        ]
    )


# -- entry point ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_search",
        description="Benchmark the archive index. Example: python -m bench.bench_search --years 20",
    )
    parser.add_argument("--years", type=int, default=20, help="archive size (default 20)")
    parser.add_argument("--big", action="store_true", help="also run 200 years (~730k items)")
    parser.add_argument("--runs", type=int, default=30, help="timed searches per query")
    parser.add_argument("--like-runs", type=int, help="timed LIKE scans per query")
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--workdir", type=Path, help="keep the archive and db here")
    parser.add_argument(
        "--collapse", action="store_true", help="search as /find does: one hit per text"
    )
    parser.add_argument("--probe-search", type=Path, metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--probe-sync", nargs=2, type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def run_all(args: argparse.Namespace, work: Path) -> str:
    sizes = [args.years, 200] if args.big and args.years != 200 else [args.years]
    sections = ["# briefbot search benchmark", ""]
    for years in sizes:
        report = await run_size(work, years, args.runs, args.like_runs)
        sections.append(render(report, args.runs))
    return "\n".join(sections)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    global COLLAPSE
    COLLAPSE = args.collapse
    if args.probe_search is not None:
        print(json.dumps(asyncio.run(probe_search(args.probe_search, args.runs))))
        return 0
    if args.probe_sync is not None:
        print(json.dumps(asyncio.run(probe_sync(*args.probe_sync))))
        return 0
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        text = asyncio.run(run_all(args, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="briefbot-bench-") as tmp:
            text = asyncio.run(run_all(args, Path(tmp)))
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
