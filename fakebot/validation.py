"""Parameter checks and the exact error strings Telegram answers with.

Everything here is pure: functions take decoded request parameters and either return the
cleaned value or raise :class:`ApiError` with Telegram's own description (``Bad Request: ...``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .html import EntityParseError, normalize_entities, parse_html, trim_text, utf16_len
from .markdown import parse_markdown, parse_markdown_v2

__all__ = [
    "CHAT_ACTIONS",
    "MAX_CALLBACK_TEXT",
    "MAX_INLINE_RESULTS",
    "MAX_TEXT",
    "NOT_MODIFIED",
    "QUERY_INVALID",
    "ApiError",
    "Unparsable",
    "bad",
    "language",
    "param_bool",
    "param_int",
    "param_str",
    "parse_text",
    "validate_button",
    "validate_commands",
    "validate_inline_result",
    "validate_markup",
    "validate_scope",
    "validate_webhook",
]

JSONDict = dict[str, Any]

MAX_TEXT = 4096
MAX_CALLBACK_TEXT = 200
MAX_INLINE_RESULTS = 50

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"

INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
INLINE_RESULT_TYPES = frozenset(
    {
        "article",
        "photo",
        "gif",
        "mpeg4_gif",
        "video",
        "audio",
        "voice",
        "document",
        "location",
        "venue",
        "contact",
        "game",
        "sticker",
    }
)
SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANG_RE = re.compile(r"^[a-z]{2}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad(description: str) -> ApiError:
    """A 400 ``Bad Request: <description>``."""
    return ApiError(400, f"Bad Request: {description}")


class Unparsable(str):
    """A JSON-expected form field that did not contain valid JSON."""


# ---------------------------------------------------------------------- parameters


def param_int(params: JSONDict, name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad(f"{name} is empty")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"invalid {name} specified") from None


def param_bool(params: JSONDict, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def param_str(params: JSONDict, name: str) -> str | None:
    value = params.get(name)
    return None if value is None else str(value)


def language(params: JSONDict) -> str:
    """``language_code`` ('' when absent); 400 unless two lower-case letters."""
    code = str(params.get("language_code") or "")
    if code and not _LANG_RE.match(code):
        raise bad("invalid language code specified")
    return code


# ---------------------------------------------------------------------- text and entities


def parse_text(
    text: Any,
    parse_mode: Any,
    entities: Any,
    *,
    html_strict: bool,
    too_long: str = "message is too long",
    empty: str = "message text is empty",
    limit: int = MAX_TEXT,
) -> tuple[str, list[JSONDict]]:
    """Apply ``parse_mode`` / ``entities`` like Telegram: the plain text and its entities."""
    if text is None:
        raise bad(empty)
    text = str(text)
    if entities not in (None, "", []):
        if isinstance(entities, Unparsable) or not isinstance(entities, list):
            raise bad("can't parse entities JSON object")
        plain, found = text, [dict(e) for e in entities if isinstance(e, dict)]
        for entity in found:
            if not {"type", "offset", "length"} <= entity.keys():
                raise bad('can\'t parse MessageEntity: field "type" is missing')
    elif parse_mode in (None, ""):
        plain, found = text, []
    else:
        mode = str(parse_mode).lower()
        try:
            if mode == "html":
                plain, found = parse_html(text, strict=html_strict)
            elif mode == "markdownv2":
                plain, found = parse_markdown_v2(text)
            elif mode == "markdown":
                plain, found = parse_markdown(text)
            else:
                raise bad(f'unsupported parse_mode "{parse_mode}"')
        except EntityParseError as exc:
            raise bad(f"can't parse entities: {exc}") from None
    plain, found = trim_text(plain, found)
    size = utf16_len(plain)
    if size == 0:
        raise bad(empty)
    if size > limit:
        raise bad(too_long)
    return plain, normalize_entities(found)


# ---------------------------------------------------------------------- keyboards


def validate_markup(raw: Any, *, inline_only: bool) -> JSONDict | None:
    """Validate reply_markup; returns the inline keyboard to echo (None if none)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, Unparsable) or not isinstance(raw, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in raw:
        if inline_only:
            raise bad("inline keyboard expected")
        if "keyboard" in raw:
            rows = raw["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad(
                    'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
                )
            for row in rows:
                for button in row:
                    text = button.get("text") if isinstance(button, dict) else button
                    if not isinstance(text, str) or not text:
                        raise bad("can't parse keyboard button: text must be non-empty")
            return None
        if raw.get("remove_keyboard") or raw.get("force_reply"):
            return None
        raise bad("can't parse reply keyboard markup JSON object")
    rows = raw["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    total = 0
    for row in rows:
        for button in row:
            validate_button(button)
            total += 1
    if total > 100:
        raise bad("reply markup is too long")
    return raw if total else None


def validate_button(button: Any) -> None:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise bad(prefix + "InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise bad(prefix + 'Field "text" must be of type String')
    if not text.strip():
        raise bad("BUTTON_TEXT_INVALID")
    actions = [a for a in INLINE_BUTTON_ACTIONS if a in button]
    if not actions:
        raise bad(prefix + "Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad(prefix + "exactly one of the optional fields must be used")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"^(https?|tg)://\S+$", url):
            raise bad("BUTTON_URL_INVALID")


# ---------------------------------------------------------------------- inline results


def validate_inline_result(result: Any, seen: set[str], *, html_strict: bool) -> JSONDict:
    """Validate one result; returns ``{"id", "type", "text", "entities"}`` (text parsed)."""
    prefix = "can't parse inline query result: "
    if not isinstance(result, dict):
        raise bad(prefix + "InlineQueryResult must be an Object")
    kind = result.get("type")
    if kind not in INLINE_RESULT_TYPES:
        raise bad("RESULT_TYPE_INVALID")
    result_id = result.get("id")
    if not isinstance(result_id, str) or not 1 <= len(result_id.encode("utf-8")) <= 64:
        raise bad("RESULT_ID_INVALID")
    if result_id in seen:
        raise bad("RESULT_ID_DUPLICATE")
    seen.add(result_id)
    parsed: JSONDict = {"id": result_id, "type": kind, "text": None, "entities": []}
    if kind == "article":
        if not result.get("title"):
            raise bad(prefix + 'Can\'t find field "title"')
        if "input_message_content" not in result:
            raise bad(prefix + 'Can\'t find field "input_message_content"')
    content = result.get("input_message_content")
    if content is not None:
        if not isinstance(content, dict):
            raise bad(prefix + "InputMessageContent must be an Object")
        if "message_text" in content:
            text, entities = parse_text(
                content.get("message_text"),
                content.get("parse_mode"),
                content.get("entities"),
                html_strict=html_strict,
            )
            parsed["text"], parsed["entities"] = text, entities
    if "reply_markup" in result:
        validate_markup(result["reply_markup"], inline_only=True)
    return parsed


# ---------------------------------------------------------------------- bot settings


def validate_commands(commands: Any) -> list[JSONDict]:
    """setMyCommands' ``commands``: the cleaned ``{"command", "description"}`` list."""
    if isinstance(commands, Unparsable) or not isinstance(commands, list):
        raise bad("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad("BOT_COMMANDS_TOO_MUCH")
    cleaned: list[JSONDict] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad("can't parse BotCommand JSON object")
        command = item.get("command")
        description = item.get("description")
        if not isinstance(command, str) or not _COMMAND_RE.match(command):
            raise bad("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": command, "description": description})
    return cleaned


def validate_scope(scope: Any) -> JSONDict:
    """A BotCommandScope's dict (``None``/'' is the default scope); 400 if malformed."""
    if scope in (None, ""):
        scope = {"type": "default"}
    if isinstance(scope, Unparsable) or not isinstance(scope, dict):
        raise bad("can't parse BotCommandScope JSON object")
    if scope.get("type") not in SCOPE_TYPES:
        raise bad("unsupported bot command scope type")
    return scope


def validate_webhook(url: str, secret: str | None) -> None:
    """setWebhook's URL (HTTPS, an allowed port) and ``secret_token``."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise bad("bad webhook: An HTTPS URL must be provided for webhook")
    if parts.port not in (None, 80, 88, 443, 8443):
        raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
    if secret is not None and not _SECRET_RE.match(secret):
        raise bad("bad webhook: secret token contains unallowed characters")
