"""Hostile and broken configs: every mistake is one ConfigError line naming the key, secrets
are never echoed, YAML bombs and deep nesting are refused, and one redaction (bot.logs)
hides every registered secret from every printed line."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import logs
from bot.config import ConfigError, load_config, parse_config

TOKEN = "987654321:AAHsecretsecretsecretsecret12345"
WEBHOOK_SECRET = "Wh-secret_0123456789abcdef"
WEBHOOK = {
    "mode": "webhook",
    "webhook": {"url": "https://bot.example.com", "secret_token": "s3cret-Token_1"},
}


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    forget = getattr(logs, "forget_secrets", None)
    if forget:
        forget()
    yield
    if forget:
        forget()


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def parse_error(raw: Any, base: Path = Path("/nonexistent-base")) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, base)
    return str(info.value)


def assert_one_clean_line(message: str, key: str) -> None:
    assert "\n" not in message, message
    assert message.startswith(key), message
    assert len(message) < 300, message
    for secret in (TOKEN, WEBHOOK_SECRET, "AAHsec", "hunter2pass"):
        assert secret not in message, message


# -- 1. config errors never echo the telegram section or the whole document --------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f"telegram: {TOKEN}\n", "telegram: expected a mapping of keys, got a string"),
        (f"- {TOKEN}\n- {WEBHOOK_SECRET}\n", "(top level): expected a mapping of keys, got a list"),
        (f"{TOKEN}\n", "(top level): expected a mapping of keys, got a string"),
        (f"telegram:\n  - {TOKEN}\n", "telegram: expected a mapping of keys, got a list"),
        (f"telegram:\n  webhook: {WEBHOOK_SECRET}\n", "telegram.webhook: expected a mapping"),
        (f"telegram:\n  throttle: {TOKEN}\n", "telegram.throttle: expected a mapping"),
        (f"telegram:\n  mode: {TOKEN}\n", "telegram.mode: expected one of polling, webhook"),
        (f"telegram:\n  token: [{TOKEN}]\n", "telegram.token: expected text, got a list"),
        (f"telegram:\n  admins: [{TOKEN}]\n", "telegram.admins[0]: expected a whole number"),
        (
            f"telegram:\n  report_errors: {TOKEN}\n",
            "telegram.report_errors: expected true or false",
        ),
        (f"telegram:\n  api_base_url: {TOKEN}\n", "telegram.api_base_url: expected an http(s) URL"),
        (
            f"telegram:\n  mode: webhook\n  webhook:\n    url: {WEBHOOK_SECRET}\n",
            "telegram.webhook.url: expected an http(s) URL",
        ),
        (
            f"telegram:\n  webhook:\n    secret_token: [{WEBHOOK_SECRET}]\n",
            "telegram.webhook.secret_token: expected text",
        ),
        (f"telegram:\n  webhook:\n    port: {WEBHOOK_SECRET}\n", "telegram.webhook.port: expected"),
        (f"telegram:\n  {TOKEN}: x\n", "telegram.<token>: unknown key"),
        (f"{TOKEN}: x\n", "(top level).<token>: unknown key"),
        (f"delivery:\n  timezone: {TOKEN}\n", "delivery.timezone: unknown time zone"),
        # Cut to length after redaction: a cut token would no longer look like a token.
        (f"delivery:\n  timezone: {'x' * 30}{TOKEN}\n", "delivery.timezone: unknown time zone"),
        (f"content:\n  {'x' * 30}{TOKEN}: 1\n", "content.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx<token>:"),
        (
            "telegram:\n  api_base_url: 'https://user:hunter2pass@host/x y'\n",
            "telegram.api_base_url: expected an http(s) URL",
        ),
    ],
)
def test_config_errors_never_echo_secrets_or_the_document(
    tmp_path: Path, text: str, key: str
) -> None:
    message = load_error(tmp_path, text)
    assert message.startswith(key), message
    assert_one_clean_line(message, key.split(":")[0])


def test_config_repr_does_not_show_the_token_or_the_webhook_secret() -> None:
    tg = {"token": TOKEN, **WEBHOOK}
    tg["webhook"] = {**WEBHOOK["webhook"], "secret_token": WEBHOOK_SECRET}
    config = parse_config({"telegram": tg}, Path("."))
    assert TOKEN not in repr(config) and WEBHOOK_SECRET not in repr(config)
    assert config.telegram.token == TOKEN  # still there, just not printed


# -- 2. one redaction for everything that prints -----------------------------------------


def test_a_registered_secret_is_redacted_from_a_debug_log_line() -> None:
    from bot.logs import MASK, RedactingFormatter, redact, register_secret

    register_secret(WEBHOOK_SECRET)
    formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    # The line python-telegram-bot logs at DEBUG for every request.
    record = logging.LogRecord(
        "telegram.Bot",
        logging.DEBUG,
        __file__,
        1,
        "Calling Bot API endpoint `%s` with parameters `%s`",
        ("setWebhook", {"url": "https://bot.example.com/telegram", "secret_token": WEBHOOK_SECRET}),
        None,
    )
    line = formatter.format(record)
    assert WEBHOOK_SECRET not in line and MASK in line and "setWebhook" in line
    assert WEBHOOK_SECRET not in redact(f"boom: secret={WEBHOOK_SECRET}")
    # URL-encoded, as in a query string, too.
    assert "Wh-secret" not in redact("https://x/?s=Wh-secret_0123456789abcdef")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://user:hunter2pass@host/path failed", "GET https://***@host/path failed"),
        ("proxy socks5://bob@10.0.0.1:1080 down", "proxy socks5://***@10.0.0.1:1080 down"),
        ("https://host/no/credentials?a=b@c", "https://host/no/credentials?a=b@c"),
        ("mail me: bob@example.com", "mail me: bob@example.com"),
        (f"https://api.telegram.org/bot{TOKEN}/getMe", "https://api.telegram.org/bot<token>/getMe"),
    ],
)
def test_credentials_in_urls_are_redacted(text: str, expected: str) -> None:
    from bot.logs import redact

    assert redact(text) == expected


def test_load_config_registers_the_config_secrets(tmp_path: Path) -> None:
    from bot.logs import redact

    path = write(
        tmp_path,
        "telegram:\n"
        f"  token: '{TOKEN}'\n"
        "  api_base_url: https://bob:hunter2pass@bot-api.example.com\n"
        "  mode: webhook\n"
        "  webhook:\n"
        "    url: https://bot.example.com\n"
        f"    secret_token: {WEBHOOK_SECRET}\n",
    )
    load_config(path)
    text = redact(f"{WEBHOOK_SECRET} / {TOKEN.split(':')[1]} / password hunter2pass")
    assert WEBHOOK_SECRET not in text and "AAHsecret" not in text and "hunter2pass" not in text


async def test_ptb_setwebhook_debug_line_does_not_show_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real python-telegram-bot DEBUG line for setWebhook, through our formatter."""
    from telegram import Bot
    from telegram.request import BaseRequest, RequestData

    from bot.logs import RedactingFormatter, register_secret

    class Ok(BaseRequest):
        async def initialize(self) -> None: ...

        async def shutdown(self) -> None: ...

        @property
        def read_timeout(self) -> float | None:
            return 1.0

        async def do_request(
            self,
            url: str,
            method: str,
            request_data: RequestData | None = None,
            read_timeout: Any = None,
            write_timeout: Any = None,
            connect_timeout: Any = None,
            pool_timeout: Any = None,
        ) -> tuple[int, bytes]:
            return 200, b'{"ok": true, "result": true}'

    register_secret(WEBHOOK_SECRET)
    bot = Bot(TOKEN, request=Ok(), get_updates_request=Ok())
    with caplog.at_level(logging.DEBUG, logger="telegram"):
        await bot.set_webhook("https://bot.example.com/telegram", secret_token=WEBHOOK_SECRET)
    formatter = RedactingFormatter("%(message)s")
    lines = [formatter.format(r) for r in caplog.records if "setWebhook" in r.getMessage()]
    assert lines and any("secret_token" in line for line in lines)
    assert not any(WEBHOOK_SECRET in line for line in lines)


def test_short_secrets_are_not_registered() -> None:
    from bot.logs import redact, register_secret

    register_secret("abc")  # masking every "abc" would garble every line
    assert redact("abcdef") == "abcdef"


# -- 3. YAML bombs, deep nesting, huge files and numbers ----------------------------------


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    # A small "billion laughs": 9**4 leaves from five lines; real ones reach gigabytes.
    def row(item: str) -> str:
        return "[" + ", ".join([item] * 9) + "]"

    bomb = (
        f"content: &a {row(repr('08:30'))}\n"
        f"storage: &b {row('*a')}\n"
        f"logging: &c {row('*b')}\n"
        f"delivery:\n  times: {row('*c')}\n"
    )
    message = load_error(tmp_path, bomb)
    assert message.startswith(f"{tmp_path / 'config.yaml'}:2: not valid YAML: aliases"), message


def test_a_single_alias_is_refused_too(tmp_path: Path) -> None:
    text = "content: &c {reload_seconds: 5}\ndelivery: {times: ['08:30']}\nlogging: *c\n"
    message = load_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'config.yaml'}:3: not valid YAML: aliases"), message


@pytest.mark.parametrize(
    "text",
    [
        "delivery:\n  times: " + "[" * 5000 + "]" * 5000 + "\n",
        "delivery: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        "".join(" " * i + "a:\n" for i in range(1200)),
    ],
    ids=["flow-lists", "flow-maps", "block-maps"],
)
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path: Path, text: str) -> None:
    message = load_error(tmp_path, text)
    assert "nested more than 50 levels deep" in message and "\n" not in message, message


def test_fifty_levels_still_parse(tmp_path: Path) -> None:
    # Deep but legal YAML reaches validation (which then rejects the unknown key).
    message = load_error(tmp_path, "delivery:\n  times: " + "[" * 48 + "]" * 48 + "\n")
    assert message.startswith("delivery.times[0]: expected a time"), message


def test_a_config_file_over_1_mb_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "# padding\n" * 120_000)
    assert "larger than 1 MB" in message and "\n" not in message, message


def test_a_number_too_long_for_python_is_a_config_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, "content:\n  reload_seconds: " + "9" * 5000 + "\n")
    assert "number too long" in message and message.count("\n") == 0, message


def test_yaml_errors_are_one_line_and_redacted(tmp_path: Path) -> None:
    message = load_error(tmp_path, "content:\n  dir: a\x00b\n")  # a raw NUL character
    assert "\n" not in message and ":2: not valid YAML: unacceptable character" in message
    message = load_error(tmp_path, f"content: !{TOKEN} x\n")
    assert TOKEN not in message and "not valid YAML" in message
    message = load_error(tmp_path, b"content:\n  dir: \xff\n")
    assert message.endswith(":2: cannot read: not UTF-8 text"), message


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "delivery:\n  timezone: UTC\ndelivery:\n  max_backlog: 5\n")
    assert message.endswith(":3: not valid YAML: duplicate key 'delivery'"), message


# -- 4. times are quoted "HH:MM" strings ---------------------------------------------------


@pytest.mark.parametrize("value", ["830", "0700", "8.30", "1_000", "-1"])
def test_unquoted_numbers_for_times_are_refused(tmp_path: Path, value: str) -> None:
    message = load_error(tmp_path, f"delivery:\n  times: [{value}]\n")
    assert message == 'delivery.times[0]: write times as quoted "HH:MM" strings, e.g. "08:30"'


@pytest.mark.parametrize("value", [830, 510, 8.5])
def test_numbers_for_times_are_refused_by_parse_config(value: Any) -> None:
    message = parse_error({"delivery": {"times": ["09:00", value]}})
    assert message == 'delivery.times[1]: write times as quoted "HH:MM" strings, e.g. "08:30"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"08:30"', dt.time(8, 30)),
        ("'8:30'", dt.time(8, 30)),
        ('" 23:59 "', dt.time(23, 59)),
        # Unquoted, these are text to YAML 1.2 and to our loader, not base-60 numbers.
        ("08:30", dt.time(8, 30)),
        ("8:30", dt.time(8, 30)),
        ("12:00", dt.time(12, 0)),
    ],
)
def test_times_as_text_keep_working(tmp_path: Path, value: str, expected: dt.time) -> None:
    config = load_config(write(tmp_path, f"delivery:\n  times: [{value}]\n"))
    assert config.delivery.times == (expected,)


def test_base_60_numbers_do_not_sneak_into_other_keys(tmp_path: Path) -> None:
    message = load_error(tmp_path, "delivery:\n  max_backlog: 1:30\n")
    assert message == "delivery.max_backlog: expected a whole number from 1 to 100, got '1:30'"


# -- 5. every key: wrong types, ranges, huge, negative, NaN, empty, unknown ---------------

BAD_VALUES: list[Any] = [
    None, "", " ", "x" * 5000, 10**100, -(10**100), -1, 0, 1.5, math.nan, math.inf, -math.inf,
    True, False, [], [None], [[]], [{}], {}, {"a": 1}, "\x00", "\ud800", "/dev/null", "/",
    TOKEN, [TOKEN], {TOKEN: 1}, 830, [830], ["25:00"], "Asia", "../..", dt.date(2024, 1, 1),
    b"bytes", 2**63, 65536,
]  # fmt: skip
KEYS = [
    "content.dir", "content.reload_seconds", "storage.path", "telegram.token",
    "telegram.api_base_url", "telegram.mode", "telegram.webhook.listen",
    "telegram.webhook.port", "telegram.webhook.url", "telegram.webhook.secret_token",
    "telegram.webhook.path", "telegram.admins", "telegram.report_errors",
    "telegram.throttle.messages", "telegram.throttle.seconds", "delivery.times",
    "delivery.timezone", "delivery.channels", "delivery.max_backlog",
    "delivery.max_messages_per_second", "delivery.paid_broadcast", "logging.level",
    "content.nope", "telegram.webhook.nope", "nope",
]  # fmt: skip


def _raw(key: str, value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    node = raw
    *parents, last = key.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    if key.startswith("telegram.webhook."):
        raw["telegram"].update(mode="webhook")
        raw["telegram"]["webhook"] = {**WEBHOOK["webhook"], last: value}
    return raw


@pytest.mark.parametrize("key", KEYS)
def test_every_broken_value_is_one_line_naming_the_key(tmp_path: Path, key: str) -> None:
    for value in BAD_VALUES:
        try:
            parse_config(_raw(key, value), tmp_path)
        except ConfigError as err:
            shown = key if not key.endswith("nope") else key.rsplit(".", 1)[0]
            assert_one_clean_line(str(err), "(top level)" if key == "nope" else shown)
        # Anything else (a crash) fails the test; an accepted value is a valid one.


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"content": {"dir": ""}}, "content.dir: expected a path"),
        ({"content": {"dir": None}}, "content.dir: expected a path"),
        ({"content": {"dir": "a\x00b"}}, "content.dir: not a usable path"),
        ({"content": {"dir": "/dev/null"}}, "content.dir: /dev/null is not a folder"),
        ({"storage": {"path": ""}}, "storage.path: expected a path"),
        ({"storage": {"path": " "}}, "storage.path: expected a path"),
        ({"storage": {"path": "/dev/null"}}, "storage.path: /dev/null is not a regular file"),
        ({"storage": {"path": "/"}}, "storage.path: / is a folder"),
        ({"storage": {"path": "\ud800"}}, "storage.path: not a usable path"),
        ({"delivery": {"channels": [0]}}, "delivery.channels[0]: expected '@channelname'"),
        ({"delivery": {"channels": [10**100]}}, "delivery.channels[0]: expected '@channelname'"),
        ({"delivery": {"channels": ["-" + "1" * 30]}}, "delivery.channels[0]: expected"),
        ({"delivery": {"max_backlog": 10**100}}, "delivery.max_backlog: expected a whole number"),
        ({"delivery": {"max_backlog": 10**100}}, "got a number too large"),
        ({"logging": {"level": ["DEBUG"]}}, "logging.level: expected one of"),
        ({"telegram": {"webhook": {"path": "a b"}}}, "telegram.webhook.path: expected a URL path"),
        ({"telegram": {"webhook": {"path": "../x"}}}, "telegram.webhook.path: expected a URL path"),
        (
            {"telegram": {"webhook": {"path": "a(.*)"}}},
            "telegram.webhook.path: expected a URL path",
        ),
        ({"telegram": {"api_base_url": "https://a\nb"}}, "telegram.api_base_url: expected"),
    ],
)
def test_broken_values_that_used_to_pass(tmp_path: Path, raw: Any, message: str) -> None:
    got = parse_error(raw, tmp_path)
    assert message in got and "\n" not in got, got


def test_storage_path_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    message = parse_error({"storage": {"path": "data"}}, tmp_path)
    assert message == (
        f"storage.path: {tmp_path / 'data'} is a folder; give a database file name such as "
        "data/briefbot.sqlite3"
    )


# -- 6. the webhook server listens on 127.0.0.1 unless told otherwise ---------------------


def test_webhook_listens_on_localhost_by_default(tmp_path: Path) -> None:
    assert parse_config({}, tmp_path).telegram.webhook.listen == "127.0.0.1"
    assert parse_config({"telegram": WEBHOOK}, tmp_path).telegram.webhook.listen == "127.0.0.1"


@pytest.mark.parametrize(
    "listen", ["0.0.0.0", "127.0.0.1", "::", "::1", "fe80::1", "localhost", "bot.internal", "a-b.c"]
)
def test_valid_listen_addresses(tmp_path: Path, listen: str) -> None:
    tg = {**WEBHOOK, "webhook": {**WEBHOOK["webhook"], "listen": listen}}
    assert parse_config({"telegram": tg}, tmp_path).telegram.webhook.listen == listen


@pytest.mark.parametrize(
    "listen", ["", " ", "0.0.0.0 ", "256.1.1.1", "-bad.host", "a b", "http://x", "a..b", 8443, None]
)
def test_invalid_listen_addresses(tmp_path: Path, listen: Any) -> None:
    tg = {**WEBHOOK, "webhook": {**WEBHOOK["webhook"], "listen": listen}}
    message = parse_error({"telegram": tg}, tmp_path)
    assert message.startswith("telegram.webhook.listen: expected"), message
    assert "\n" not in message


@pytest.mark.parametrize("port", [0, -1, 65536, 10**100, "8443", True, 84.43, None])
def test_invalid_ports(tmp_path: Path, port: Any) -> None:
    tg = {**WEBHOOK, "webhook": {**WEBHOOK["webhook"], "port": port}}
    message = parse_error({"telegram": tg}, tmp_path)
    assert message.startswith("telegram.webhook.port: expected a whole number from 1 to 65535")


def test_uncaught_exceptions_print_redacted_tracebacks(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from bot.logs import install_excepthook, register_secret\n"
        f"register_secret({WEBHOOK_SECRET!r})\n"
        "install_excepthook()\n"
        "def boom():\n"
        f"    raise RuntimeError('in thread ' + {WEBHOOK_SECRET!r})\n"
        "t = threading.Thread(target=boom); t.start(); t.join()\n"
        f"raise RuntimeError('bad ' + {WEBHOOK_SECRET!r} + ' https://u:hunter2pass@h/ ' + {TOKEN!r})\n"
    )
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "RuntimeError: bad <token> https://***@h/ <token>" in proc.stderr, proc.stderr
    assert "RuntimeError: in thread <token>" in proc.stderr, proc.stderr
    assert WEBHOOK_SECRET not in proc.stderr and "hunter2pass" not in proc.stderr
    assert "AAHsec" not in proc.stderr
