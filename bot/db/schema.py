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
    -- Search grams (see bot/search.py): unigrams need no positions (detail=none keeps that
    -- table small and fast); bigram phrases need them. Contentless: the rows are items.id.
    CREATE VIRTUAL TABLE items_uni USING fts5(
        u, content='', tokenize='ascii', columnsize=0, detail=none
    );
    CREATE VIRTUAL TABLE items_bi USING fts5(
        b, content='', tokenize='ascii', columnsize=0
    );
    """,
    # 2: delivery: chats and their subscriptions, channel managers, keyword watches, the
    # outbox and the broadcasts it serves, and the lease that lets one process send.
    """
    -- One row per chat the bot knows. status: active = receives the daily brief;
    -- stopped = reachable but not subscribed (stopped, or only noted / watching);
    -- blocked = Telegram refuses (blocked, kicked, deactivated, not found);
    -- migrated = the group became the supergroup migrated_to.
    CREATE TABLE chats (
        id            INTEGER PRIMARY KEY,
        type          TEXT NOT NULL
                      CHECK (type IN ('private', 'group', 'supergroup', 'channel')),
        title         TEXT NOT NULL DEFAULT '',
        username      TEXT,
        language      TEXT,                 -- 'zh' / 'en'; NULL: follow the user's client
        subscribed_at TEXT,                 -- ISO UTC; NULL: never subscribed
        status        TEXT NOT NULL DEFAULT 'stopped'
                      CHECK (status IN ('active', 'stopped', 'blocked', 'migrated')),
        reason        TEXT,                 -- why it is blocked or stopped, for operators
        source        TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'config')),
        delivery_time TEXT,                 -- 'HH:MM' in delivery.timezone; NULL: the default
        last_issue    TEXT,                 -- ISO date of the newest issue enqueued for it
        last_slot     TEXT,                 -- ISO UTC instant of the last schedule slot handled
        migrated_to   INTEGER,
        updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    -- (status, rowid) pages the active chats; (status, delivery_time, rowid) the due ones.
    CREATE INDEX chats_status ON chats(status);
    CREATE INDEX chats_due ON chats(status, delivery_time);

    CREATE TABLE channel_managers (
        channel_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        user_id    INTEGER NOT NULL,
        added_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        PRIMARY KEY (user_id, channel_id)
    ) WITHOUT ROWID;

    CREATE TABLE watches (
        chat_id    INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        terms      TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        PRIMARY KEY (chat_id, terms)
    ) WITHOUT ROWID;

    -- Message texts, stored once: 100,000 chats of one issue share the same few parts.
    CREATE TABLE texts (
        id     INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        html   TEXT NOT NULL
    );

    CREATE TABLE broadcasts (
        id             INTEGER PRIMARY KEY,
        trigger        TEXT NOT NULL CHECK (trigger IN ('schedule', 'admin', 'cli', 'watch')),
        issue          TEXT,                -- the issue posted by admin/cli; NULL: several
        started_at     REAL NOT NULL,       -- unix seconds
        enqueued_at    REAL,                -- set once every row of it is in the outbox
        finished_at    REAL,                -- set once no row of it is pending
        total          INTEGER NOT NULL DEFAULT 0,
        sent           INTEGER NOT NULL DEFAULT 0,
        failed         INTEGER NOT NULL DEFAULT 0,
        cancelled      INTEGER NOT NULL DEFAULT 0,
        newly_inactive INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX broadcasts_open ON broadcasts(finished_at);

    -- One row per message to send. Rows of one chat are sent in id order (the parts of an
    -- issue are inserted in order), one at a time. Times are unix seconds.
    CREATE TABLE outbox (
        id           INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL CHECK (kind IN ('issue', 'watch')),
        issue        TEXT NOT NULL,         -- ISO date
        chat_id      INTEGER NOT NULL,
        part         INTEGER NOT NULL,
        text_id      INTEGER NOT NULL REFERENCES texts(id),
        status       TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
        message_id   INTEGER,               -- Telegram's, once it confirmed the message
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      REAL NOT NULL DEFAULT 0,
        last_error   TEXT,
        broadcast_id INTEGER REFERENCES broadcasts(id),
        created_at   REAL NOT NULL,
        sent_at      REAL,
        UNIQUE (kind, issue, chat_id, part)
    );
    -- Small: only pending rows are in it, in send order (rowid).
    CREATE INDEX outbox_pending ON outbox(status) WHERE status = 'pending';
    CREATE INDEX outbox_chat ON outbox(chat_id, status);
    CREATE INDEX outbox_broadcast ON outbox(broadcast_id, status);

    -- Which process sends (one at a time, so a CLI broadcast next to a running bot cannot
    -- send a row twice). owner: 'host:pid'.
    CREATE TABLE delivery_lease (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        owner   TEXT NOT NULL,
        expires REAL NOT NULL
    );
    """,
    # ops: operational facts that must survive a restart (bot/db/ops.py owns it): when the
    # bot started watching a git source, and a heartbeat row the readiness probe rewrites.
    """
    CREATE TABLE ops_state (
        key   TEXT PRIMARY KEY,
        value REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # N: /quiet: this chat's deliveries go out with disable_notification.
    """
    ALTER TABLE chats ADD COLUMN quiet INTEGER NOT NULL DEFAULT 0;
    """,
    # git source (bot/db/revisions.py owns revisions, bot/db/edits.py owns edits): when each
    # issue was first seen and last changed, and the corrections of messages already sent.
    """
    CREATE TABLE revisions (
        date         TEXT PRIMARY KEY,      -- ISO date of the issue
        digest       TEXT NOT NULL,         -- title and items: any change
        items_digest TEXT NOT NULL,         -- items only: same items, new date = a move
        revision     INTEGER NOT NULL,      -- 1, +1 on every change
        first_seen   REAL NOT NULL,         -- unix seconds
        changed_at   REAL NOT NULL,
        blocked      TEXT NOT NULL DEFAULT '',  -- why it is not ready ('' once settled)
        quiet        INTEGER NOT NULL DEFAULT 0, -- only chats without a cursor get it
        moved_from   TEXT,                  -- its messages were sent under this date
        corrected    INTEGER NOT NULL DEFAULT 0, -- revision corrections were planned for
        gone_at      REAL                   -- removed upstream
    );
    -- One row per edit of a sent message, per revision of its issue: exactly once.
    CREATE TABLE edits (
        id         INTEGER PRIMARY KEY,
        chat_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        issue      TEXT NOT NULL,           -- the date the message was sent under
        part       INTEGER NOT NULL,
        revision   INTEGER NOT NULL,
        base_id    INTEGER NOT NULL REFERENCES texts(id),  -- the render, without the mark
        text_id    INTEGER NOT NULL REFERENCES texts(id),  -- what the message shows after
        status     TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'done', 'failed', 'refused')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        next_at    REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL,
        done_at    REAL,
        UNIQUE (chat_id, message_id, revision)
    );
    CREATE INDEX edits_pending ON edits(status) WHERE status = 'pending';
    CREATE INDEX edits_message ON edits(chat_id, message_id);
    """,
    # Links to channel posts (bot/db/channels.channel_posts): the public channels, found
    # without reading every chat; a few rows however many subscribers there are.
    """
    CREATE INDEX chats_public_channels ON chats(username)
        WHERE type = 'channel' AND username IS NOT NULL;
    """,
    # Search folds what readers type (bot/core/fold.py: NFKC, Traditional to Simplified):
    # the gram tables hold tokens of the old fold, and a contentless FTS5 row can only be
    # deleted with the tokens it was given, so the index is emptied here and the next sync
    # rebuilds it from the files (delivery tables untouched). Items get a hash of their
    # text; item_twins lists the items whose text another item has (search shows such a
    # text once, with each of its dates), rewritten by the sync.
    """
    INSERT INTO items_uni(items_uni) VALUES ('delete-all');
    INSERT INTO items_bi(items_bi) VALUES ('delete-all');
    DELETE FROM items;
    DELETE FROM issues;
    DELETE FROM files;
    ALTER TABLE items ADD COLUMN text_hash INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX items_text_hash ON items(text_hash);
    CREATE TABLE item_twins (
        id    INTEGER PRIMARY KEY,          -- items.id of an item whose text is not unique
        first INTEGER NOT NULL,             -- the newest item with that text: the group
        newer INTEGER                       -- the next newer one; NULL for the newest
    );
    CREATE INDEX item_twins_first ON item_twins(first);
    """,
    # Forum topics (bot/db/topics.py owns topics): a topic of a forum supergroup subscribes
    # on its own, with its own cursors; its deliveries and watch alerts go to its thread.
    # outbox and watches gain thread_id (0: no topic, so the unique keys still hold: NULLs
    # are distinct in SQLite). A table constraint cannot be altered, so both tables are
    # rebuilt; every row is copied, with thread 0.
    """
    -- status: active = receives the brief in that topic; stopped = /stop there, or only
    -- watching; gone = Telegram said it is closed or deleted (a /start there again
    -- subscribes it anew). The chat's row holds what topics share (language, time, quiet).
    CREATE TABLE topics (
        chat_id       INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        thread_id     INTEGER NOT NULL CHECK (thread_id > 0),  -- message_thread_id
        status        TEXT NOT NULL DEFAULT 'stopped'
                      CHECK (status IN ('active', 'stopped', 'gone')),
        reason        TEXT,
        subscribed_at TEXT,
        last_issue    TEXT,                 -- as chats.last_issue, for this topic
        last_slot     TEXT,                 -- as chats.last_slot, for this topic
        updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        UNIQUE (chat_id, thread_id)
    );
    CREATE INDEX topics_status ON topics(status);

    CREATE TABLE watches_new (
        chat_id    INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        thread_id  INTEGER NOT NULL DEFAULT 0,
        terms      TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        PRIMARY KEY (chat_id, thread_id, terms)
    ) WITHOUT ROWID;
    INSERT INTO watches_new (chat_id, thread_id, terms, created_at)
        SELECT chat_id, 0, terms, created_at FROM watches;
    DROP TABLE watches;
    ALTER TABLE watches_new RENAME TO watches;

    CREATE TABLE outbox_new (
        id           INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL CHECK (kind IN ('issue', 'watch')),
        issue        TEXT NOT NULL,
        chat_id      INTEGER NOT NULL,
        thread_id    INTEGER NOT NULL DEFAULT 0,  -- the forum topic; 0: none
        part         INTEGER NOT NULL,
        text_id      INTEGER NOT NULL REFERENCES texts(id),
        status       TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
        message_id   INTEGER,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      REAL NOT NULL DEFAULT 0,
        last_error   TEXT,
        broadcast_id INTEGER REFERENCES broadcasts(id),
        created_at   REAL NOT NULL,
        sent_at      REAL,
        UNIQUE (kind, issue, chat_id, thread_id, part)
    );
    INSERT INTO outbox_new (id, kind, issue, chat_id, thread_id, part, text_id, status,
        message_id, attempts, next_at, last_error, broadcast_id, created_at, sent_at)
        SELECT id, kind, issue, chat_id, 0, part, text_id, status, message_id, attempts,
        next_at, last_error, broadcast_id, created_at, sent_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_new RENAME TO outbox;
    CREATE INDEX outbox_pending ON outbox(status) WHERE status = 'pending';
    CREATE INDEX outbox_chat ON outbox(chat_id, status);
    CREATE INDEX outbox_broadcast ON outbox(broadcast_id, status);
    """,
]
