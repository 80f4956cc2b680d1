"""The git content source: fetch into the bot's own working copy (force-pushes followed,
deleted files deleted), a failing remote keeps the last good content and alerts once
after 3 failures and 15 minutes, ``briefbot pull``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, parse_config
from bot.db.archive import Archive
from bot.source import git
from bot.source.follow import Follower
from bot.source.health import ALERT_SECONDS, SourceHealth
from fakebot.upstream import Upstream, issue, month

from .conftest import REPO

FEB = "docs/2025/newsflash-202502.md"
MAR = "docs/2025/newsflash-202503.md"


def source_config(tmp_path: Path, url: str, **content: Any) -> Config:
    raw: dict[str, Any] = {
        "content": {"source": {"git": url, "path": "docs"}, "settle_seconds": 600, **content},
        "storage": {"path": str(tmp_path / "data" / "bot.sqlite3")},
        "telegram": {"admins": [42]},
    }
    return parse_config(raw, tmp_path)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream(tmp_path / "upstream.git")


def tree(config: Config) -> dict[str, str]:
    root = git.tree_dir(config.storage_path)
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_fetch_resets_the_copy_and_follows_a_force_push(tmp_path: Path, upstream: Upstream) -> None:
    config = source_config(tmp_path, upstream.url)
    first = upstream.push(
        {
            FEB: month(issue("2025.02.28", "二月")),
            MAR: month(issue("2025.03.01", "三月")),
            "README.md": "not content",
            "docs/notes.txt": "not a month file",
        }
    )
    fetched = git.fetch(upstream.url, "main", "docs", config.storage_path)
    assert fetched.commit == first and fetched.written == 2
    assert set(tree(config)) == {"2025/newsflash-202502.md", "2025/newsflash-202503.md"}
    again = git.fetch(upstream.url, "main", "docs", config.storage_path)
    assert not again.changed  # nothing new: nothing rewritten (the index reads nothing)

    # History rewritten: a commit with no parent, one file changed, the other gone.
    forced = upstream.push({MAR: month(issue("2025.03.01", "改过的三月"))}, force=True)
    fetched = git.fetch(f"file://{upstream.path}", "main", "docs", config.storage_path)
    assert fetched.commit == forced and (fetched.written, fetched.deleted) == (1, 1)
    assert list(tree(config)) == ["2025/newsflash-202503.md"]
    assert "改过的三月" in tree(config)["2025/newsflash-202503.md"]


@pytest.mark.parametrize(
    ("branch", "path", "message"),
    [
        ("nope", "docs", "content.source.branch: the repository has no branch 'nope'"),
        ("main", "missing", "content.source.path: no folder 'missing'"),
        ("main", "README.md", "content.source.path: 'README.md' is not a folder"),
    ],
)
def test_a_wrong_branch_or_path_is_one_clear_line(
    tmp_path: Path, upstream: Upstream, branch: str, path: str, message: str
) -> None:
    upstream.push({FEB: month(issue("2025.02.28", "二月")), "README.md": "x"})
    with pytest.raises(git.SourceError) as err:
        git.fetch(upstream.url, branch, path, tmp_path / "db.sqlite3")
    assert str(err.value).startswith(message)


def test_an_unreachable_remote_never_shows_its_credentials(tmp_path: Path) -> None:
    url = "https://editor:s3cr3t-pass@127.0.0.1:9/newsflash.git"
    with pytest.raises(git.SourceError) as err:
        git.fetch(url, "main", "docs", tmp_path / "db.sqlite3")
    text = str(err.value)
    assert text.startswith("cannot fetch the content source:") and "\n" not in text
    assert "s3cr3t-pass" not in text and "editor" not in text


# -- failing and recovering ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("poll_seconds", "alert_after"),
    [(300, 4), (1, 901), (3600, 3), (450, 3)],  # failures until the alert
)
def test_the_alert_waits_for_3_failures_and_15_minutes(poll_seconds: int, alert_after: int) -> None:
    health = SourceHealth()
    events = [health.failure(n * poll_seconds, "boom") for n in range(alert_after + 50)]
    assert events.index("failing") == alert_after - 1  # the failure that crosses both
    assert events.count("failing") == 1  # then silence, however long it lasts
    assert health.failing and health.consecutive_failures == alert_after + 50
    assert health.success(10**7, "abc") == "recovered"
    assert not health.failing and health.last_success == 10**7
    assert health.success(10**7 + 1) is None  # recovered once, not on every poll


def test_a_short_blip_is_never_reported() -> None:
    health = SourceHealth()
    for n in range(2):
        assert health.failure(n * 600, "timeout") is None
    assert health.success(1300) is None
    # The count starts again: two more failures and 15 minutes are not an alert either.
    assert health.failure(1400, "x") is None and health.failure(1400 + ALERT_SECONDS, "x") is None


class Clock:
    def __init__(self, now: float = 1_740_790_800.0) -> None:  # 2025-03-01 01:00 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now


class Notes(list[str]):
    async def __call__(self, text: str) -> None:
        self.append(text)


async def test_a_failing_remote_keeps_the_last_good_content_and_alerts_once(
    tmp_path: Path, upstream: Upstream
) -> None:
    upstream.push({FEB: month(issue("2025.02.28", "二月第一条"))})
    config = source_config(tmp_path, upstream.url)
    clock, notes = Clock(), Notes()
    async with await Archive.open(config.storage_path) as archive:
        follower = Follower(config, archive, clock=clock, notify=notes)
        assert (await follower.poll()).ok
        good = follower.health.last_success
        # The remote goes away (renamed, network down): every poll fails.
        upstream.path.rename(tmp_path / "elsewhere.git")
        for _ in range(5):
            clock.now += 300
            result = await follower.poll()
            assert not result.ok and "cannot fetch" in result.error
            assert (await archive.search("二月第一条")).total == 1  # still served
        assert follower.health.failing and follower.health.last_success == good
        assert len(notes) == 1 and "failed 4 times" in notes[0]  # 3 and 15 min: the 4th
        (tmp_path / "elsewhere.git").rename(upstream.path)
        upstream.push({FEB: month(issue("2025.02.28", "二月第一条"), issue("2025.03.01", "新"))})
        clock.now += 300
        result = await follower.poll()
        assert result.ok and result.report and result.report.added
        assert len(notes) == 2 and "works again" in notes[1]
        assert not follower.health.failing and follower.health.last_success == clock.now


# -- briefbot pull --------------------------------------------------------------------------


def pull(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "pull", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"content:\n  source:\n    git: {url}\n    path: docs\n"
        f"storage:\n  path: {tmp_path / 'data' / 'bot.sqlite3'}\n",
        encoding="utf-8",
    )
    return path


def test_pull_prints_what_changed(tmp_path: Path, upstream: Upstream) -> None:
    upstream.push({FEB: month(issue("2025.02.27", "甲"), issue("2025.02.28", "乙"))})
    config = write_config(tmp_path, upstream.url)
    first = pull(config)
    assert first.returncode == 0, first.stderr
    assert "added 2: 2025-02-27, 2025-02-28" in first.stdout
    upstream.push({FEB: month(issue("2025.02.28", "乙改")), MAR: month(issue("2025.03.01", "丙"))})
    second = pull(config, "--json")
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["ok"] and (data["added"], data["updated"], data["removed"]) == (
        ["2025-03-01"],
        ["2025-02-28"],
        ["2025-02-27"],
    )
    assert data["commit"] == upstream.head.decode()  # type: ignore[union-attr]


def test_pull_failing_is_one_line_without_credentials(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://bot:hunter2-secret@127.0.0.1:9/x.git")
    result = pull(config)
    assert result.returncode == 1
    assert result.stderr.startswith("briefbot: cannot fetch the content source")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2-secret" not in result.stderr + result.stdout


def test_pull_without_a_source_says_so(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"storage:\n  path: {tmp_path / 'db.sqlite3'}\n", encoding="utf-8")
    result = pull(path)
    assert result.returncode == 1 and "content.source is not configured" in result.stderr


async def test_the_fetch_hook_hears_every_outcome(tmp_path: Path, upstream: Upstream) -> None:
    upstream.push({FEB: month(issue("2025.02.28", "二月"))})
    config = source_config(tmp_path, upstream.url)
    heard: list[str | None] = []
    async with await Archive.open(config.storage_path) as archive:
        follower = Follower(config, archive, on_fetch=heard.append)
        await follower.poll()
        upstream.path.rename(tmp_path / "gone.git")
        await follower.poll()
    assert heard[0] is None and heard[1] is not None and "cannot fetch" in heard[1]


async def test_the_bot_tells_the_ops_state_about_fetches(
    tmp_path: Path, upstream: Upstream
) -> None:
    from fakebot import fake_bot_api

    from .botkit import BotUnderTest

    upstream.push({FEB: month(issue("2025.02.28", "二月"))})
    with fake_bot_api(rate_limits=False) as api:
        raw: dict[str, Any] = {
            "content": {"source": {"git": upstream.url, "path": "docs"}},
            "storage": {"path": str(tmp_path / "data" / "bot.sqlite3")},
            "telegram": {"api_base_url": api.url},
            "ops": {"listen": ""},
        }
        async with BotUnderTest(api, parse_config(raw, tmp_path)) as bot:
            services = bot.app.bot_data.services
            assert services.source is not None and services.ops is not None
            await services.source.poll()
            assert services.ops.state.source.last_ok is not None
            assert services.source.health.last_success is not None
