"""Configuration: a YAML file over built-in defaults, validated key by key.

Every mistake is reported with the dotted key it concerns, e.g.
``delivery.timezone: unknown time zone 'Asia/Shanghia'``. Paths are relative to the
config file's folder (to the working directory when there is no file).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_FILE = "config.yaml"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
_TOKEN = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{20,100}$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ConfigError(ValueError):
    """A config value that is wrong; the message starts with the key."""


@dataclass(frozen=True)
class Webhook:
    listen: str = "0.0.0.0"
    port: int = 8443
    url: str = ""
    secret_token: str = ""
    path: str = "telegram"


@dataclass(frozen=True)
class Telegram:
    token: str = ""
    api_base_url: str = "https://api.telegram.org"
    mode: str = "polling"
    webhook: Webhook = field(default_factory=Webhook)
    admins: tuple[int, ...] = ()
    report_errors: bool = True
    throttle_messages: int = 8
    throttle_seconds: float = 10.0


@dataclass(frozen=True)
class Delivery:
    times: tuple[dt.time, ...] = (dt.time(8, 30),)
    timezone: str = "Asia/Shanghai"
    channels: tuple[str | int, ...] = ()
    max_backlog: int = 3
    max_messages_per_second: float = 25.0
    paid_broadcast: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Config:
    content_dir: Path = Path("content")
    reload_seconds: float = 60.0
    storage_path: Path = Path("data/briefbot.sqlite3")
    telegram: Telegram = field(default_factory=Telegram)
    delivery: Delivery = field(default_factory=Delivery)
    log_level: str = "INFO"
    source: Path | None = None

    def token(self) -> str:
        """The bot token (the environment wins over the file); ConfigError if unusable."""
        token = os.environ.get(TOKEN_ENV) or self.telegram.token
        where = f"{TOKEN_ENV} (environment)" if os.environ.get(TOKEN_ENV) else "telegram.token"
        if not token:
            raise ConfigError(
                f"telegram.token: no bot token; set telegram.token in the config or {TOKEN_ENV}"
            )
        if not _TOKEN.match(token.strip()):
            raise ConfigError(
                f"{where}: malformed bot token; expected '123456789:AA...' from @BotFather"
            )
        return token.strip()


# -- validation helpers: each takes the dotted key and the raw value --------------------


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected a whole number from {lo} to {hi}, got {value!r}")
    return value


def _num(key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def _str(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected text, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _url(key: str, value: Any) -> str:
    text = _str(key, value).rstrip("/")
    if not re.match(r"^https?://[^\s/]+", text):
        raise ConfigError(
            f"{key}: expected an http(s) URL such as https://api.telegram.org, got {value!r}"
        )
    return text


def _time(key: str, value: Any) -> dt.time:
    if isinstance(value, int) and not isinstance(value, bool) and 60 <= value < 1440:
        # YAML 1.1 reads an unquoted 8:30 as the base-60 number 510.
        return dt.time(value // 60, value % 60)
    m = _TIME.match(str(value).strip()) if isinstance(value, str) else None
    if not m:
        raise ConfigError(f"{key}: expected a time HH:MM such as '08:30' (quoted), got {value!r}")
    return dt.time(int(m[1]), int(m[2]))


def _zone(key: str, value: Any) -> str:
    try:
        ZoneInfo(_str(key, value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{key}: unknown time zone {value!r}; use a name such as 'Asia/Shanghai'"
        ) from None
    return str(value)


def _chat(key: str, value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.match(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$", value):
        return value
    if isinstance(value, str) and re.match(r"^-?\d+$", value):
        return int(value)
    raise ConfigError(f"{key}: expected '@channelname' or a numeric chat id, got {value!r}")


def _list(key: str, value: Any, each: Callable[[str, Any], Any]) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    return tuple(each(f"{key}[{i}]", v) for i, v in enumerate(value))


def _section(key: str, value: Any, known: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of keys, got {value!r}")
    for name in value:
        if name not in known:
            raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(sorted(known))})")
    return value


_SECTIONS = {
    "content": {"dir", "reload_seconds"},
    "storage": {"path"},
    "telegram": {
        "token",
        "api_base_url",
        "mode",
        "webhook",
        "admins",
        "report_errors",
        "throttle",
    },
    "delivery": {
        "times",
        "timezone",
        "channels",
        "max_backlog",
        "max_messages_per_second",
        "paid_broadcast",
    },
    "logging": {"level"},
}


def parse_config(raw: Any, base: Path, source: Path | None = None) -> Config:
    """Build a Config from parsed YAML; ConfigError names the first wrong key."""
    top = _section("(top level)", raw, set(_SECTIONS))
    s = {name: _section(name, top.get(name), keys) for name, keys in _SECTIONS.items()}
    d = Config()
    content, storage, tg, dl = s["content"], s["storage"], s["telegram"], s["delivery"]
    return Config(
        content_dir=base / _str("content.dir", content.get("dir", str(d.content_dir))),
        reload_seconds=_num("content.reload_seconds", content.get("reload_seconds", 60), 0, 86400),
        storage_path=base / _str("storage.path", storage.get("path", str(d.storage_path))),
        telegram=_telegram(tg),
        delivery=_delivery(dl),
        log_level=_choice(
            "logging.level",
            str(s["logging"].get("level", "INFO")).upper(),
            ("DEBUG", "INFO", "WARNING", "ERROR"),
        ),
        source=source,
    )


def _telegram(tg: dict[str, Any]) -> Telegram:
    d = Telegram()
    wh = _section(
        "telegram.webhook", tg.get("webhook"), {"listen", "port", "url", "secret_token", "path"}
    )
    th = _section("telegram.throttle", tg.get("throttle"), {"messages", "seconds"})
    mode = _choice("telegram.mode", tg.get("mode", d.mode), ("polling", "webhook"))
    webhook = Webhook(
        listen=_str("telegram.webhook.listen", wh.get("listen", "0.0.0.0")),
        port=_int("telegram.webhook.port", wh.get("port", 8443), 1, 65535),
        url=_str("telegram.webhook.url", wh.get("url", "")),
        secret_token=_str("telegram.webhook.secret_token", wh.get("secret_token", "")),
        path=_str("telegram.webhook.path", wh.get("path", "telegram")).strip("/"),
    )
    if mode == "webhook":
        _url("telegram.webhook.url", webhook.url)
        if not re.match(r"^[A-Za-z0-9_-]{1,256}$", webhook.secret_token):
            raise ConfigError(
                "telegram.webhook.secret_token: required in webhook mode: 1-256 characters of A-Z a-z 0-9 _ -"
            )
    return Telegram(
        token=_str("telegram.token", tg.get("token", "")),
        api_base_url=_url("telegram.api_base_url", tg.get("api_base_url", d.api_base_url)),
        mode=mode,
        webhook=webhook,
        admins=_list("telegram.admins", tg.get("admins"), lambda k, v: _int(k, v, 1, 2**53)),
        report_errors=_bool("telegram.report_errors", tg.get("report_errors", True)),
        throttle_messages=_int("telegram.throttle.messages", th.get("messages", 8), 1, 1000),
        throttle_seconds=_num("telegram.throttle.seconds", th.get("seconds", 10), 0.1, 3600),
    )


def _delivery(dl: dict[str, Any]) -> Delivery:
    paid = _bool("delivery.paid_broadcast", dl.get("paid_broadcast", False))
    rate = _num(
        "delivery.max_messages_per_second", dl.get("max_messages_per_second", 25), 0.1, 1000
    )
    if rate > 30 and not paid:
        raise ConfigError(
            "delivery.max_messages_per_second: Telegram allows at most 30 per second "
            "unless delivery.paid_broadcast is true"
        )
    times = _list("delivery.times", dl.get("times", ["08:30"]), _time)
    if not times:
        raise ConfigError("delivery.times: give at least one time, such as ['08:30']")
    return Delivery(
        times=tuple(sorted(set(times))),
        timezone=_zone("delivery.timezone", dl.get("timezone", "Asia/Shanghai")),
        channels=_list("delivery.channels", dl.get("channels"), _chat),
        max_backlog=_int("delivery.max_backlog", dl.get("max_backlog", 3), 1, 100),
        max_messages_per_second=rate,
        paid_broadcast=paid,
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file (``config.yaml`` if present when none is named)."""
    if path is None:
        if not Path(DEFAULT_FILE).is_file():
            return parse_config({}, Path("."))
        path = DEFAULT_FILE
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found (copy config.example.yaml)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file}: cannot read: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{file}{where}: not valid YAML: {getattr(err, 'problem', err)}"
        ) from None
    return parse_config(raw, file.parent, file)
