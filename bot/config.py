"""Configuration: a YAML file over built-in defaults, validated key by key.

Every mistake is reported on one line with the dotted key it concerns, e.g.
``delivery.timezone: unknown time zone 'Asia/Shanghia'``. Values from the ``telegram``
section (the token, the webhook secret, URLs with passwords) are never echoed: those
messages name the kind of value instead ("got a string (not shown)"). Paths are relative
to the config file's folder (to the working directory when there is no file).

The file is read with a hardened YAML loader: at most ``MAX_FILE_BYTES``, no aliases
(``*name``; a few hundred bytes of them can expand past a gigabyte), at most ``MAX_DEPTH``
levels of nesting, no duplicate keys, and no YAML 1.1 base-60 numbers (``8:30`` is the
text "8:30", not 510).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import yaml

from bot.configvalues import (
    _MAX_ID,
    _bool,
    _chat,
    _check,
    _choice,
    _got,
    _host,
    _int,
    _list,
    _num,
    _path,
    _section,
    _str,
    _time,
    _url,
    _webhook_path,
    _zone,
)
from bot.configvalues import (
    ConfigError as ConfigError,
)
from bot.logs import redact, register_secret
from bot.yamlsafe import _Loader, _yaml_problem

DEFAULT_FILE = "config.yaml"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
MAX_FILE_BYTES = 1024 * 1024
_TOKEN = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{20,100}$")


@dataclass(frozen=True)
class Webhook:
    listen: str = "127.0.0.1"
    port: int = 8443
    url: str = ""
    secret_token: str = field(default="", repr=False)
    path: str = "telegram"


@dataclass(frozen=True)
class Telegram:
    token: str = field(default="", repr=False)
    api_base_url: str = "https://api.telegram.org"
    mode: str = "polling"
    webhook: Webhook = field(default_factory=Webhook)
    admins: tuple[int, ...] = ()
    report_errors: bool = True
    throttle_messages: int = 8
    throttle_seconds: float = 10.0
    http: str = "aiohttp"  # PTB's HTTP layer: aiohttp (bot/telegram/request.py) or httpx


@dataclass(frozen=True)
class Delivery:
    times: tuple[dt.time, ...] = (dt.time(8, 30),)
    timezone: str = "Asia/Shanghai"
    channels: tuple[str | int, ...] = ()
    max_backlog: int = 3
    max_messages_per_second: float = 25.0
    paid_broadcast: bool = False
    # (start, end) in delivery.timezone: deliveries due inside wait until it ends.
    quiet_hours: tuple[dt.time, dt.time] | None = None
    on_arrival: bool = False  # chats without their own /time get an issue once it settles

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class GitSource:
    """``content.source``: follow the brief in a git repository (see bot/source/)."""

    url: str = field(default="", repr=False)  # may carry credentials: never printed
    branch: str = "main"
    path: str = "docs"  # the folder inside the repository with the month files
    poll_seconds: float = 300.0


@dataclass(frozen=True)
class Ops:
    """``ops``: the health and metrics endpoint, and alert thresholds."""

    listen: str = "127.0.0.1:9464"  # host:port for /healthz /readyz /metrics; "" turns it off
    stale_days: int = 3  # alert when a git source brought no new issue for this long
    min_free_mb: int = 100  # alert when the database's disk has less free space


@dataclass(frozen=True)
class Config:
    content_dir: Path = Path("content")
    reload_seconds: float = 60.0
    storage_path: Path = Path("data/briefbot.sqlite3")
    telegram: Telegram = field(default_factory=Telegram)
    delivery: Delivery = field(default_factory=Delivery)
    log_level: str = "INFO"
    source: Path | None = None  # the config file this came from
    log_format: str = "text"  # or "json": one JSON object per line on stderr
    content_source: GitSource | None = None
    settle_seconds: float = 1800.0  # an issue is ready once unchanged this long
    ops: Ops = field(default_factory=Ops)

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

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be printed: the bot token (file and environment),
        the webhook secret_token, and user names and passwords in the configured URLs."""
        found = [os.environ.get(TOKEN_ENV, ""), self.telegram.token]
        found.append(self.telegram.webhook.secret_token)
        urls = [self.telegram.api_base_url, self.telegram.webhook.url]
        if self.content_source:
            urls.append(self.content_source.url)
        for url in urls:
            try:
                parts = urlsplit(url)
            except ValueError:
                continue
            for part in (parts.username, parts.password):
                if part:
                    found += [part, unquote(part)]
        return tuple(s for s in dict.fromkeys(found) if s)


_SECTIONS = {
    "content": {"dir", "reload_seconds", "source", "settle_seconds"},
    "storage": {"path"},
    "telegram": {
        "token",
        "api_base_url",
        "mode",
        "webhook",
        "admins",
        "report_errors",
        "throttle",
        "http",
    },
    "delivery": {
        "times",
        "timezone",
        "channels",
        "max_backlog",
        "max_messages_per_second",
        "paid_broadcast",
        "quiet_hours",
        "on_arrival",
    },
    "logging": {"level", "format"},
    "ops": {"listen", "stale_days", "min_free_mb"},
}


def parse_config(raw: Any, base: Path, source: Path | None = None) -> Config:
    """Build a Config from parsed YAML; ConfigError names the first wrong key."""
    top = _section("(top level)", raw, set(_SECTIONS))
    s = {name: _section(name, top.get(name), keys) for name, keys in _SECTIONS.items()}
    d = Config()
    content, storage, tg, dl = s["content"], s["storage"], s["telegram"], s["delivery"]
    content_dir = _path("content.dir", content.get("dir", str(d.content_dir)), base)
    _check("content.dir", content_dir, want_dir=True)
    storage_path = _path("storage.path", storage.get("path", str(d.storage_path)), base)
    _check("storage.path", storage_path, want_dir=False)
    level = s["logging"].get("level", "INFO")
    return Config(
        content_dir=content_dir,
        reload_seconds=_num("content.reload_seconds", content.get("reload_seconds", 60), 0, 86400),
        storage_path=storage_path,
        telegram=_telegram(tg),
        delivery=_delivery(dl),
        log_level=_choice(
            "logging.level",
            level.upper() if isinstance(level, str) else level,
            ("DEBUG", "INFO", "WARNING", "ERROR"),
        ),
        source=source,
        log_format=_choice("logging.format", s["logging"].get("format", "text"), ("text", "json")),
        content_source=_git_source(content.get("source")),
        settle_seconds=_num(
            "content.settle_seconds", content.get("settle_seconds", 1800), 0, 7 * 86400
        ),
        ops=_ops(s["ops"]),
    )


def _git_source(raw: Any) -> GitSource | None:
    if raw is None:
        return None
    src = _section("content.source", raw, {"git", "branch", "path", "poll_seconds"})
    d = GitSource()
    url = _str("content.source.git", src.get("git", ""))
    if not url.strip():
        raise ConfigError(
            "content.source.git: give the repository, e.g. https://github.com/getiot/newsflash.git,"
            " a file:// URL or a local path"
        )
    branch = _str("content.source.branch", src.get("branch", d.branch))
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", branch) or ".." in branch:
        raise ConfigError(
            f"content.source.branch: not a branch name: {_got('content.source.branch', branch)}"
        )
    path = _str("content.source.path", src.get("path", d.path)).strip("/")
    if ".." in path.split("/"):
        raise ConfigError("content.source.path: must stay inside the repository (no '..')")
    return GitSource(
        url=url.strip(),
        branch=branch,
        path=path,
        poll_seconds=_num(
            "content.source.poll_seconds", src.get("poll_seconds", d.poll_seconds), 1, 86400
        ),
    )


def _ops(ops: dict[str, Any]) -> Ops:
    d = Ops()
    listen = _str("ops.listen", ops.get("listen", d.listen)).strip()
    if listen:
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(
                f'ops.listen: expected host:port such as 127.0.0.1:9464, or "" to turn it off,'
                f" got {_got('ops.listen', listen)}"
            )
        _host("ops.listen", host.strip("[]"))
    return Ops(
        listen=listen,
        stale_days=_int("ops.stale_days", ops.get("stale_days", d.stale_days), 1, 365),
        min_free_mb=_int("ops.min_free_mb", ops.get("min_free_mb", d.min_free_mb), 0, 10**7),
    )


def _telegram(tg: dict[str, Any]) -> Telegram:
    d = Telegram()
    wh = _section(
        "telegram.webhook", tg.get("webhook"), {"listen", "port", "url", "secret_token", "path"}
    )
    th = _section("telegram.throttle", tg.get("throttle"), {"messages", "seconds"})
    mode = _choice("telegram.mode", tg.get("mode", d.mode), ("polling", "webhook"))
    webhook = Webhook(
        listen=_host("telegram.webhook.listen", wh.get("listen", d.webhook.listen)),
        port=_int("telegram.webhook.port", wh.get("port", d.webhook.port), 1, 65535),
        url=_str("telegram.webhook.url", wh.get("url", "")),
        secret_token=_str("telegram.webhook.secret_token", wh.get("secret_token", "")),
        path=_webhook_path("telegram.webhook.path", wh.get("path", d.webhook.path)),
    )
    if mode == "webhook":
        _url("telegram.webhook.url", webhook.url, "https://bot.example.com")
        if not re.match(r"^[A-Za-z0-9_-]{1,256}$", webhook.secret_token):
            raise ConfigError(
                "telegram.webhook.secret_token: required in webhook mode: 1-256 characters of A-Z a-z 0-9 _ -"
            )
    return Telegram(
        token=_str("telegram.token", tg.get("token", "")),
        api_base_url=_url("telegram.api_base_url", tg.get("api_base_url", d.api_base_url)),
        mode=mode,
        webhook=webhook,
        admins=_list("telegram.admins", tg.get("admins"), lambda k, v: _int(k, v, 1, _MAX_ID)),
        report_errors=_bool("telegram.report_errors", tg.get("report_errors", True)),
        throttle_messages=_int("telegram.throttle.messages", th.get("messages", 8), 1, 1000),
        throttle_seconds=_num("telegram.throttle.seconds", th.get("seconds", 10), 0.1, 3600),
        http=_choice("telegram.http", tg.get("http", d.http), ("aiohttp", "httpx")),
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
        quiet_hours=_quiet_hours(dl.get("quiet_hours")),
        on_arrival=_bool("delivery.on_arrival", dl.get("on_arrival", False)),
    )


def _quiet_hours(raw: Any) -> tuple[dt.time, dt.time] | None:
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or len(raw) != 2:
        raise ConfigError(
            f'delivery.quiet_hours: expected ["23:00", "07:00"] (start, end), got {_got("delivery.quiet_hours", raw)}'
        )
    start, end = (_time(f"delivery.quiet_hours[{i}]", v) for i, v in enumerate(raw))
    if start == end:
        raise ConfigError("delivery.quiet_hours: start and end are the same time")
    return start, end


# -- reading the file ---------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file (``config.yaml`` if present when none is named).

    The config's secrets (``Config.secrets()``) are registered with ``bot.logs``, so from
    then on every log line and every ``bot.logs.redact()`` hides them."""
    if path is None:
        if not Path(DEFAULT_FILE).is_file():
            config = parse_config({}, Path("."))
            _register(config)
            return config
        path = DEFAULT_FILE
    file = Path(path)
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError(
                f"{file}: larger than {MAX_FILE_BYTES // 1024 // 1024} MB; is this the config file?"
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found (copy config.example.yaml)") from None
    except OSError as err:
        raise ConfigError(f"{file}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{file}:{line}: cannot read: not UTF-8 text") from None
    try:
        loader = _Loader(text)  # checks the characters: a ReaderError already
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        at, problem = _yaml_problem(err, text)
        where = f":{at}" if at else ""
        raise ConfigError(redact(f"{file}{where}: not valid YAML: {problem}")) from None
    config = parse_config(raw, file.parent, file)
    _register(config)
    return config


def _register(config: Config) -> None:
    for secret in config.secrets():
        register_secret(secret)
