"""Search marks, before and after, side by side in one process (issue 11/12).

Usage: ``python -m bench.bench_marks [--years 20] [--db FILE] [--runs 30] [--rounds 3]``

*before* marks a hit by folding its whole visible text and mapping matches back
(``mark_ranges_folded``, the code ``mark_ranges`` was); *after* is ``mark_ranges``: each term
as a pattern over the original text, folding only texts with a character that folds to
several which a match could cover. Both run in the same process on the same pages,
alternating, so machine load hits them alike. Measured:

1. one page of marks (the 10 hits ``/find`` shows) per query, CPU microseconds;
2. ``Archive.search`` end to end (totals cached, as a repeated query), with ``mark_ranges``
   of ``bot.db.archive`` swapped between the two, ``collapse`` False (CLI, watches) and True
   (``/find``): p50 / p95 wall, and CPU per search;
3. the same search with the total cache emptied before each call (a query's first time),
   the collapsed total counted the old way and the new way;
4. how many of the archive's texts each path would take.

Without ``--db`` the archive is generated (``bench.gen_archive``) and indexed in a temporary
directory first.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import bot.db.archive as archive_module
from bench.bench_search import QUERY_CLASSES
from bench.common import percentile
from bench.gen_archive import generate
from bot.core.fold import changed, fold
from bot.core.markdown import visible_text
from bot.core.search import _marker, mark_ranges, mark_ranges_folded, parse_query
from bot.db.archive import Archive

Marks = Callable[[str, tuple[str, ...]], tuple[tuple[int, int], ...]]
VARIANTS: tuple[tuple[str, Marks], ...] = (("before", mark_ranges_folded), ("after", mark_ranges))
PAGE = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def open_index(db: Path | None, years: int, work: Path) -> Archive:
    if db is not None:
        return await Archive.open(db)
    content = work / "content"
    log(f"generating {years} years in {content}")
    generate(content, years)
    store = await Archive.open(work / "index.sqlite3")
    log("indexing")
    await store.sync(content)
    return store


async def pages(store: Archive) -> list[tuple[str, str, tuple[str, ...], list[str]]]:
    """(class, query, folded terms, visible texts of its first /find page) per query."""
    out = []
    for name, queries in QUERY_CLASSES:
        for query in queries:
            page = await store.search(query, limit=PAGE, collapse=True)
            out.append((name, query, page.terms, [visible_text(h.text) for h in page.hits]))
    return out


def time_marks(fn: Marks, plains: list[str], terms: tuple[str, ...], reps: int) -> float:
    """CPU microseconds for one page of marks (the median of ``reps`` pages)."""
    samples = []
    for _ in range(reps):
        started = time.process_time_ns()
        for plain in plains:
            fn(plain, terms)
        samples.append((time.process_time_ns() - started) / 1000)
    return percentile(samples, 50)


def micro(queries: list[tuple[str, str, tuple[str, ...], list[str]]], rounds: int) -> list[str]:
    rows = []
    for name, query, terms, plains in queries:
        for plain in plains:  # the two must agree before their times mean anything
            assert mark_ranges(plain, terms) == mark_ranges_folded(plain, terms), (query, plain)
        chars = sum(map(len, plains))
        best = {
            label: min(time_marks(fn, plains, terms, 50) for _ in range(rounds))
            for label, fn in VARIANTS
        }
        ratio = best["before"] / best["after"] if best["after"] else float("inf")
        rows.append(
            f"| {name} | `{query}` | {len(plains)} / {chars:,} | {best['before']:.1f} "
            f"| {best['after']:.1f} | {ratio:.1f}x |"
        )
    return [
        "| Class | Query | hits / characters | before µs CPU | after µs CPU | before/after |",
        "|---|---|---|---:|---:|---:|",
        *rows,
    ]


async def end_to_end(store: Archive, runs: int, collapse: bool) -> list[str]:
    """Both variants per class, interleaved run by run (the order flips every run)."""
    rows = []
    for name, queries in QUERY_CLASSES:
        wall: dict[str, list[float]] = {label: [] for label, _ in VARIANTS}
        cpu: dict[str, float] = {label: 0.0 for label, _ in VARIANTS}
        for query in queries:
            for _, fn in VARIANTS:  # warm-up, and the total cached
                archive_module.mark_ranges = fn
                await store.search(query, limit=PAGE, collapse=collapse)
            for run in range(runs):
                for label, fn in VARIANTS if run % 2 else VARIANTS[::-1]:
                    archive_module.mark_ranges = fn
                    w0, c0 = time.perf_counter(), time.process_time()
                    await store.search(query, limit=PAGE, collapse=collapse)
                    wall[label].append((time.perf_counter() - w0) * 1000)
                    cpu[label] += time.process_time() - c0
        archive_module.mark_ranges = mark_ranges
        n = len(wall["before"])
        cells = [
            f"{percentile(wall[label], 50):.2f} / {percentile(wall[label], 95):.2f} "
            f"({cpu[label] / n * 1000:.2f})"
            for label, _ in VARIANTS
        ]
        p95 = percentile(wall["after"], 95)
        rows.append(f"| {name} | {cells[0]} | {cells[1]} | {'PASS' if p95 <= 2 else 'FAIL'} |")
    return [
        f"`collapse={collapse}`, totals cached, {runs} runs a query and variant; "
        "ms p50 / p95 wall (mean CPU ms a search):",
        "",
        "| Class | before | after | after p95 <= 2 ms |",
        "|---|---|---|---|",
        *rows,
    ]


async def cold_totals(store: Archive, runs: int) -> list[str]:
    """/find's search as a query's first time: the exact total counted in the statement.
    *before* counts the hits that are not hidden twins in SQL (what ``Archive`` does when it
    has no twin list), *after* the plain total less the matching hidden twins; interleaved
    run by run."""

    async def no_list(version: int) -> None:
        return None

    real = store._twins_at
    ways = (("before", no_list), ("after", real))
    rows = []
    for name, queries in QUERY_CLASSES:
        wall: dict[str, list[float]] = {label: [] for label, _ in ways}
        cpu: dict[str, float] = {label: 0.0 for label, _ in ways}
        for query in queries:
            for run in range(runs):
                for label, twins_at in ways if run % 2 else ways[::-1]:
                    store._twins_at = twins_at  # type: ignore[method-assign]
                    store._totals.clear()
                    w0, c0 = time.perf_counter(), time.process_time()
                    await store.search(query, limit=PAGE, collapse=True)
                    wall[label].append((time.perf_counter() - w0) * 1000)
                    cpu[label] += time.process_time() - c0
        store._twins_at = real  # type: ignore[method-assign]
        n = len(wall["after"])
        cells = [
            f"{percentile(wall[label], 50):.2f} / {percentile(wall[label], 95):.2f} "
            f"({cpu[label] / n * 1000:.2f})"
            for label, _ in ways
        ]
        p95 = percentile(wall["after"], 95)
        rows.append(f"| {name} | {cells[0]} | {cells[1]} | {'PASS' if p95 <= 2 else 'FAIL'} |")
    twins = await store.db.value("SELECT count(*) FROM item_twins WHERE newer IS NOT NULL")
    return [
        f"`collapse=True`, total cache emptied before each search, {runs} runs a query and "
        f"variant, {twins} hidden twins; ms p50 / p95 wall (mean CPU ms a search):",
        "",
        "| Class | before (NOT IN twins) | after (total less hidden twins) | after p95 <= 2 ms |",
        "|---|---|---|---|",
        *rows,
    ]


async def paths(store: Archive) -> list[str]:
    """Of all item texts: how many need folding at all, how many hold a character that
    folds to several, and how many each query would send to the slow path."""
    plains = [row[0] for row in await store.db.rows("SELECT plain FROM items")]
    several = "".join(c for c, f in changed().items() if len(f) > 1)
    any_several = re.compile("[" + "".join(map(re.escape, several)) + "]")
    lower = sum(fold(p) == p.lower() for p in plains)
    expand = sum(bool(any_several.search(p)) for p in plains)
    slow = []
    for _, queries in QUERY_CLASSES:
        for query in queries:
            pattern = _marker(parse_query(query).terms).expanding
            slow.append(sum(bool(pattern and pattern.search(p)) for p in plains))
    n = len(plains) or 1  # an empty index: no division by zero
    return [
        f"| item texts | {len(plains):,} |",
        "|---|---:|",
        f"| fold(text) == text.lower() (a lower-case fast path would do) | {lower:,} ({lower / n:.1%}) |",
        f"| hold a character that folds to several (…, ﬁ, ㈱) | {expand:,} ({expand / n:.1%}) |",
        f"| slow path for a query, most of all {len(slow)} queries | {max(slow):,} ({max(slow) / n:.2%}) |",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_marks",
        description="Search marks before/after in one process. Example: "
        "python -m bench.bench_marks --years 20",
    )
    parser.add_argument("--years", type=int, default=20, help="archive size (default 20)")
    parser.add_argument("--db", type=Path, help="an index already built (skips generating)")
    parser.add_argument("--runs", type=int, default=30, help="timed searches a query and variant")
    parser.add_argument("--rounds", type=int, default=3, help="micro timing rounds (best kept)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, work: Path) -> str:
    store = await open_index(args.db, args.years, work)
    try:
        items = (await store.counts())[1]
        queries = await pages(store)
        log("timing marks")
        sections = [
            f"# Search marks, before / after ({items:,} items)",
            "",
            "## One page of marks",
            "",
            *micro(queries, args.rounds),
            "",
            "## Archive.search",
            "",
        ]
        for collapse in (False, True):
            log(f"timing searches, collapse={collapse}")
            sections += [*await end_to_end(store, args.runs, collapse), ""]
        log("timing first searches (no cached total)")
        sections += ["## First search of a query", "", *await cold_totals(store, args.runs), ""]
        log("counting paths")
        sections += ["## Which path texts take", "", *await paths(store), ""]
        return "\n".join(sections)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="briefbot-marks-") as tmp:
        print(asyncio.run(run(args, Path(tmp))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
