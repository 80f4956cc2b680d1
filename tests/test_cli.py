"""The command line, as a user runs it: output, JSON shapes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import build_parser, main

from .conftest import BUNDLED, REPO


@pytest.fixture
def cfg(tmp_path: Path, bundled: Path) -> Path:
    """A config file pointing at a copy of the bundled archive and a fresh database."""
    path = tmp_path / "config.yaml"
    path.write_text(f"content:\n  dir: {bundled}\nstorage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_bundled_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "check", str(BUNDLED), "--json")
    assert code == 0
    assert json.loads(out) == {"issues": 3, "items": 31, "problems": []}


def test_check_reports_file_line_and_fails_on_errors(
    capsys: pytest.CaptureFixture[str], content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", "## 2025.02.30\n\nt\n\n1. a\n")
    code, out, _ = run(capsys, "check", str(content))
    assert code == 1
    assert out.strip().endswith(
        "newsflash-202502.md:1: error: impossible date '2025.02.30'; issue skipped"
    )
    code, out, _ = run(capsys, "check", str(content), "--json")
    problem = json.loads(out)["problems"][0]
    assert code == 1 and problem["line"] == 1 and problem["severity"] == "error"


def test_index_then_show_and_search_json(capsys: pytest.CaptureFixture[str], cfg: Path) -> None:
    code, out, _ = run(capsys, "index", "--config", str(cfg))
    assert code == 0 and "3 issues, 31 items" in out and "added 3" in out
    code, out, _ = run(capsys, "index", "--config", str(cfg))
    assert "added" not in out and "0 files read" in out
    code, out, _ = run(capsys, "show", "2025年2月14日", "--json", "--config", str(cfg))
    issue = json.loads(out)
    assert code == 0 and issue["date"] == "2025-02-14" and len(issue["items"]) == 11
    assert issue["items"][0] == {
        "number": 1,
        "text": issue["items"][0]["text"],
        "urls": ["https://mp.weixin.qq.com/s/MtnPblWpGevd-itQroSP9A"],
    }
    code, out, _ = run(capsys, "search", "--json", "--limit", "2", "DeepSeek", "--config", str(cfg))
    result = json.loads(out)
    assert code == 0 and result["total"] == 6 and len(result["results"]) == 2
    assert set(result["results"][0]) == {"date", "number", "text", "urls"}


@pytest.mark.parametrize(
    "date", ["latest", "2025-02-14", "2025.02.14", "2025/2/14", "20250214", "2月14日", "02-14"]
)
def test_show_accepts_date_forms(capsys: pytest.CaptureFixture[str], cfg: Path, date: str) -> None:
    code, out, _ = run(capsys, "show", date, "--config", str(cfg))
    assert code == 0 and out.startswith("2025-02-14 · 2025年02月14日 💡行业快讯")


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["show", "2025-02-30"], 2, "accepted forms"),
        (["show", "tomorrowish"], 2, "accepted forms"),
        (["show", "2025-02-12"], 1, "no issue on 2025-02-12; nearest: 2025-02-10, 2025-02-14"),
        (["search", "x" * 4000], 2, "too long"),
        (["search", "2025", "2024"], 2, "at most one date filter"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str], cfg: Path, argv: list[str], code: int, message: str
) -> None:
    got, _out, err = run(capsys, *argv, "--config", str(cfg))
    assert got == code and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_names_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("delivery:\n  timezone: Asia/Shanghia\n")
    code, _, err = run(capsys, "index", "--config", str(path))
    assert code == 2 and "delivery.timezone: unknown time zone 'Asia/Shanghia'" in err
    code, _, err = run(capsys, "index", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "config file not found" in err


def test_python_dash_m_bot_runs_the_same_cli(cfg: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "search", "--json", "小米", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total"] == 1


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"briefbot {name}" in readme, f"README does not document `briefbot {name}`"


def test_example_config_is_valid_and_documents_every_key() -> None:
    import yaml

    from bot.config import _SECTIONS, load_config

    load_config(REPO / "config.example.yaml")
    raw = yaml.safe_load((REPO / "config.example.yaml").read_text(encoding="utf-8"))
    for section, keys in _SECTIONS.items():
        assert set(raw[section]) == keys, section
