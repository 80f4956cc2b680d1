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
import ipaddress
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from bot.logs import redact, register_secret

DEFAULT_FILE = "config.yaml"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 50
_TOKEN = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{20,100}$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$"
)
# A URL path for the webhook: PTB turns it into a route pattern, so no regex syntax.
_URL_PATH = re.compile(r"^[A-Za-z0-9_.~:-]+(/[A-Za-z0-9_.~:-]+)*$")
_MAX_ID = 2**53  # Telegram ids have at most 52 significant bits


class ConfigError(ValueError):
    """A config value that is wrong; the message starts with the key."""


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

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be printed: the bot token (file and environment),
        the webhook secret_token, and user names and passwords in the configured URLs."""
        found = [os.environ.get(TOKEN_ENV, ""), self.telegram.token]
        found.append(self.telegram.webhook.secret_token)
        for url in (self.telegram.api_base_url, self.telegram.webhook.url):
            try:
                parts = urlsplit(url)
            except ValueError:
                continue
            for part in (parts.username, parts.password):
                if part:
                    found += [part, unquote(part)]
        return tuple(s for s in dict.fromkeys(found) if s)


# -- describing wrong values -------------------------------------------------------------


def _secret(key: str) -> bool:
    """Keys whose values are never echoed: the telegram section, and the whole document."""
    return key in ("(top level)", "telegram") or key.startswith("telegram.")


def _kind(value: Any) -> str:
    """What a value is, without its contents."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # nan, inf, -inf
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (str, "a string (not shown)"),
        (int, "a number (not shown)"),
        (float, "a number (not shown)"),
        (dict, "a mapping"),
        (list, "a list"),
        ((set, frozenset), "a set"),
        (tuple, "a list"),
        ((bytes, bytearray), "binary data"),
        (dt.datetime, "a date and time"),
        (dt.date, "a date"),
    ]
    for types, text in kinds:
        if isinstance(value, types):
            return text
    return "a " + type(value).__name__


def _show(value: Any) -> str:
    """A short, safe rendering of a wrong scalar (containers are described, not shown)."""
    if isinstance(value, str):
        text = redact(value)  # before cutting: a cut token no longer looks like one
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**18 else "a number too large"
    if isinstance(value, float):
        return repr(value)
    return _kind(value)


def _got(key: str, value: Any) -> str:
    return _kind(value) if _secret(key) else _show(value)


def _name(name: Any) -> str:
    """A key's name for a message (a key is named even in the telegram section)."""
    if not isinstance(name, str | int | float | bool) and name is not None:
        return _kind(name)
    text = redact(str(name))  # before cutting: a cut token no longer looks like one
    text = text if len(text) <= 40 else text[:37] + "..."
    return text if re.fullmatch(r"[\w.:<>\- ]+", text) else repr(text)


# -- validation helpers: each takes the dotted key and the raw value --------------------


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(
            f"{key}: expected a whole number from {lo} to {hi}, got {_got(key, value)}"
        )
    return value


def _num(key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected a number from {lo:g} to {hi:g}, got {_got(key, value)}")
    return float(value)


def _str(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected text, got {_got(key, value)}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {_got(key, value)}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {_got(key, value)}")
    return value


def _url(key: str, value: Any, example: str = "https://api.telegram.org") -> str:
    text = _str(key, value).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", text):
        raise ConfigError(
            f"{key}: expected an http(s) URL such as {example}, got {_got(key, value)}"
        )
    return text


def _host(key: str, value: Any) -> str:
    text = _str(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME.match(text) or re.fullmatch(r"[\d.]+", text):
            raise ConfigError(
                f"{key}: expected an IP address such as 127.0.0.1 (or 0.0.0.0 for every "
                f"interface) or a host name, got {_got(key, value)}"
            ) from None
    return text


def _webhook_path(key: str, value: Any) -> str:
    text = _str(key, value).strip("/")
    parts = text.split("/")
    if text and (not _URL_PATH.match(text) or "." in parts or ".." in parts):
        raise ConfigError(
            f"{key}: expected a URL path such as 'telegram' (letters, digits, _ . ~ : - "
            f"and /), got {_got(key, value)}"
        )
    return text


def _path(key: str, value: Any, base: Path) -> Path:
    text = _str(key, value)
    if not text.strip():
        raise ConfigError(f"{key}: expected a path, got {_show(value) if value else 'nothing'}")
    try:
        os.fsencode(text)
        if "\x00" in text:
            raise ValueError
    except (UnicodeError, ValueError):
        raise ConfigError(f"{key}: not a usable path: {_show(value)}") from None
    return base / text


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else text[:38] + "..." + text[-38:]


def _check(key: str, path: Path, want_dir: bool) -> None:
    """Refuse a path that exists but is the wrong kind of thing (a folder for a file,
    /dev/null for a database). A missing path is fine: it is created when needed."""
    try:
        if not path.exists():
            return
        if want_dir and not path.is_dir():
            raise ConfigError(f"{key}: {_short(path)} is not a folder")
        if not want_dir and path.is_dir():
            raise ConfigError(
                f"{key}: {_short(path)} is a folder; give a database file name such as "
                "data/briefbot.sqlite3"
            )
        if not want_dir and not path.is_file():
            raise ConfigError(
                f"{key}: {_short(path)} is not a regular file (a device or pipe?); give a database "
                "file name such as data/briefbot.sqlite3"
            )
    except OSError as err:
        raise ConfigError(f"{key}: cannot use {_short(path)}: {err.strerror or err}") from None


def _time(key: str, value: Any) -> dt.time:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 830 as a number; YAML 1.1 (PyYAML's yaml.safe_load) even reads 8:30 as
        # the base-60 number 510. Guessing would be wrong one way or the other.
        raise ConfigError(f'{key}: write times as quoted "HH:MM" strings, e.g. "08:30"')
    m = _TIME.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ConfigError(
            f"{key}: expected a time HH:MM such as '08:30' (quoted), got {_got(key, value)}"
        )
    return dt.time(int(m[1]), int(m[2]))


def _zone(key: str, value: Any) -> str:
    text = _str(key, value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"{key}: unknown time zone {_got(key, value)}; use a name such as 'Asia/Shanghai'"
        ) from None
    return text


def _chat(key: str, value: Any) -> str | int:
    if isinstance(value, str) and re.match(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$", value):
        return value
    chat: Any = value
    if isinstance(value, str) and re.match(r"^-?\d{1,20}$", value):
        chat = int(value)
    if isinstance(chat, int) and not isinstance(chat, bool) and 0 < abs(chat) <= _MAX_ID:
        return chat
    raise ConfigError(
        f"{key}: expected '@channelname' or a numeric chat id, got {_got(key, value)}"
    )


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
        raise ConfigError(f"{key}: expected a mapping of keys, got {_got(key, value)}")
    for name in value:
        if name not in known:
            raise ConfigError(
                f"{key}.{_name(name)}: unknown key (known: {', '.join(sorted(known))})"
            )
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


# -- reading the file ---------------------------------------------------------------------

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader for configs: no aliases, bounded depth, unique keys, no base-60."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(
                None, None, "aliases (*name) are not allowed; write the value out", mark
            )
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if tag in (_INT_TAG, _FLOAT_TAG) and ":" in value:
            return _STR_TAG  # YAML 1.1 base-60 (8:30 = 510); YAML 1.2 and people read text
        return tag

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    raise ConstructorError(
                        None, None, f"duplicate key '{_name(key_node.value)}'", key_node.start_mark
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:  # more than sys.get_int_max_str_digits() digits
            raise ConstructorError(None, None, "number too long", node.start_mark) from None
        return value


_Loader.add_constructor(_INT_TAG, _Loader.construct_yaml_int)


def _yaml_problem(err: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """(line, one-line description) of a YAML error, without echoing the document."""
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        return line, f"unacceptable character #x{err.character:04x}"
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    if context and not problem.startswith("but "):
        context = None
    message = f"{context}, {problem}" if context else problem
    message = " ".join(message.split())
    if len(message) > 200:
        message = message[:197] + "..."
    return (mark.line + 1 if mark else None), message


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
