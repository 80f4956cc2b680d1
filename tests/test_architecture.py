"""The layering rule, enforced: which package of bot/ may import which. See
docs/architecture.md. The core is pure: it imports neither Telegram nor SQLite."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"
EXTERNAL_IO = ("telegram", "aiosqlite", "sqlite3", "httpx")

# layer -> what it may import from bot (besides itself); None: anything.
ALLOWED: dict[str, set[str] | None] = {
    "core": {"bot.errors"},
    "db": {"bot.core", "bot.errors"},
    "delivery": {"bot.core", "bot.db", "bot.errors", "bot.config", "bot.logs"},
    "ops": {"bot.core", "bot.db", "bot.delivery", "bot.errors", "bot.config", "bot.logs"},
    "source": {"bot.core", "bot.db", "bot.errors", "bot.config", "bot.logs"},
    "telegram": None,
}
FORBIDDEN_EXTERNAL = {
    "core": EXTERNAL_IO,
    "db": ("telegram", "httpx"),
    "delivery": ("telegram", "httpx"),
    "ops": ("telegram", "httpx"),
    "source": ("telegram", "httpx"),
}
TOP_NO_TELEGRAM = (
    "config.py",
    "errors.py",
    "logs.py",
    "console.py",
    *sorted(f"replies/{p.name}" for p in (BOT / "replies").glob("*.py")),
)


def imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(layer: str, source: str) -> list[str]:
    found = []
    for name in sorted(imports(source)):
        top = name.split(".")[0]
        if top in FORBIDDEN_EXTERNAL.get(layer, ()):
            found.append(name)
        allowed = ALLOWED.get(layer)
        if allowed is not None and name.startswith("bot.") and name != "bot":
            own = f"bot.{layer}"
            if not (name.startswith(own) or any(name.startswith(a) for a in allowed)):
                found.append(name)
    return found


def _modules(layer: str) -> list[Path]:
    return sorted((BOT / layer).glob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_EXTERNAL))
def test_layers_import_only_what_they_may(layer: str) -> None:
    bad = {
        str(path.relative_to(BOT)): v
        for path in _modules(layer)
        if (v := violations(layer, path.read_text(encoding="utf-8")))
    }
    assert not bad, f"layer rule broken (see docs/architecture.md): {bad}"


def test_the_edges_that_need_no_telegram_do_not_import_it() -> None:
    for name in TOP_NO_TELEGRAM:
        found = {
            i for i in imports((BOT / name).read_text(encoding="utf-8")) if i.startswith("telegram")
        }
        assert not found, f"bot/{name} imports {found}"


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("core", "import telegram"),
        ("core", "from telegram.error import BadRequest"),
        ("core", "import aiosqlite"),
        ("core", "import sqlite3 as s"),
        ("core", "from bot.db.archive import Archive"),
        ("db", "from bot.delivery.engine import DeliveryEngine"),
        ("delivery", "from telegram import Bot"),
        ("delivery", "from bot.telegram.transport import PtbTransport"),
        ("ops", "from telegram import Bot"),
        ("ops", "from bot.telegram.app import build_application"),
        ("delivery", "from bot.ops.metrics import Metrics"),
        ("source", "from telegram import Bot"),
        ("source", "from bot.delivery.engine import DeliveryEngine"),
    ],
)
def test_the_rule_catches_a_forbidden_import(layer: str, source: str) -> None:
    assert violations(layer, source)


def test_the_core_exists_and_is_checked() -> None:
    assert len(_modules("core")) >= 9
