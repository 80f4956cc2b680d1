"""The SQLite schema and its migrations. ``PRAGMA user_version`` is the number of
migrations applied; each entry upgrades an existing database in place, in one transaction."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the archive index.
    """
    CREATE TABLE files (
        path     TEXT PRIMARY KEY,          -- relative to the content directory
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256   TEXT NOT NULL,
        decls    TEXT NOT NULL,             -- JSON: the issues this file declares
        problems TEXT NOT NULL              -- JSON: what was wrong with it when last read
    );
    CREATE TABLE issues (
        date    TEXT PRIMARY KEY,           -- ISO yyyy-mm-dd
        title   TEXT NOT NULL,
        file    TEXT NOT NULL,
        line    INTEGER NOT NULL,
        digest  TEXT NOT NULL,              -- of the content, to tell updates from no-ops
        indexed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    -- id = yyyymmdd * 10000 + 9999 - position: descending rowid order is newest-first
    -- order, and a date range is a rowid range, which FTS5 answers without other rows.
    CREATE TABLE items (
        id       INTEGER PRIMARY KEY,
        date     TEXT NOT NULL REFERENCES issues(date) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        number   INTEGER NOT NULL,
        text     TEXT NOT NULL,             -- Markdown source
        plain    TEXT NOT NULL,             -- visible text, what search matches
        urls     TEXT NOT NULL,             -- JSON list
        line     INTEGER NOT NULL
    );
    CREATE INDEX items_date ON items(date);
    CREATE VIRTUAL TABLE items_fts USING fts5(
        u, b, content='', tokenize='ascii', columnsize=0
    );
    """,
]
