"""The Bot API methods the fake answers: one ``_m_<method>`` per method, found by name.

Getting updates and webhooks, commands and bot texts, sending/editing/deleting messages,
callback and inline queries, chats and members.  Parameter checks live in
:mod:`fakebot.validation`, flood limits and chat faults in :mod:`fakebot.limits`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .forum import ForumTopics
from .media import parse_caption, photo_sizes
from .state import SentMessage
from .updates import bot_user_dict, chat_member_dict
from .validation import (
    CHAT_ACTIONS,
    MAX_CALLBACK_TEXT,
    MAX_INLINE_RESULTS,
    NOT_MODIFIED,
    QUERY_INVALID,
    ApiError,
    Unparsable,
    bad,
    language,
    param_bool,
    param_int,
    param_str,
    parse_text,
    validate_commands,
    validate_inline_result,
    validate_markup,
    validate_scope,
    validate_webhook,
)

__all__ = ["DEFAULT_EXCLUDED_UPDATES", "BotMethods"]

JSONDict = dict[str, Any]

# Update types delivered when allowed_updates was never specified (Telegram's default).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class BotMethods(ForumTopics):
    """The method handlers (attributes set by ``FakeBotAPI.__init__``)."""

    html_strict: bool
    strict_queries: bool
    max_poll_timeout: float

    # --- bot and updates

    def _m_getMe(self, params: JSONDict) -> JSONDict:
        return bot_user_dict(self.bot_id, self.bot_username, self.bot_first_name, full=True)

    def _m_logOut(self, params: JSONDict) -> bool:
        return True

    def _m_close(self, params: JSONDict) -> bool:
        return True

    def _m_getUpdates(self, params: JSONDict) -> list[JSONDict]:
        offset = param_int(params, "offset") or 0
        limit = param_int(params, "limit") or 100
        limit = min(max(limit, 1), 100)
        timeout = float(params.get("timeout") or 0)
        timeout = min(max(timeout, 0.0), self.max_poll_timeout)
        allowed = params.get("allowed_updates")
        with self._cond:
            if self._webhook.get("url"):
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(allowed, list):
                self._allowed_updates = [str(a) for a in allowed] or None
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                self._updates = [u for u in self._updates if self._update_allowed(u)]
                if self._updates or self._stopping:
                    return [dict(u) for u in self._updates[:limit]]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def _update_allowed(self, update: JSONDict) -> bool:
        kinds = set(update) - {"update_id"}
        if self._allowed_updates is None:
            return not kinds <= DEFAULT_EXCLUDED_UPDATES
        return bool(kinds & set(self._allowed_updates))

    def _m_setWebhook(self, params: JSONDict) -> bool:
        url = param_str(params, "url") or ""
        if not url:
            return self._m_deleteWebhook(params)
        secret = param_str(params, "secret_token")
        validate_webhook(url, secret)
        with self._cond:
            self._webhook = {
                "url": url,
                "secret_token": secret,
                "max_connections": param_int(params, "max_connections") or 40,
                "allowed_updates": params.get("allowed_updates"),
                "ip_address": params.get("ip_address"),
            }
            if param_bool(params, "drop_pending_updates"):
                self._updates.clear()
            self._poll_generation += 1
            self._cond.notify_all()
        return True

    def _m_deleteWebhook(self, params: JSONDict) -> bool:
        with self._lock:
            self._webhook = {}
            if param_bool(params, "drop_pending_updates"):
                self._updates.clear()
        return True

    def _m_getWebhookInfo(self, params: JSONDict) -> JSONDict:
        with self._lock:
            info: JSONDict = {
                "url": self._webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self._webhook.get("url"):
                info["max_connections"] = self._webhook["max_connections"]
                if self._webhook.get("ip_address"):
                    info["ip_address"] = self._webhook["ip_address"]
                if isinstance(self._webhook.get("allowed_updates"), list):
                    info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    # --- commands

    def _scope_key(self, scope: Any) -> str:
        scope = validate_scope(scope)
        kind = scope["type"]
        normalized: JSONDict = {"type": kind}
        if kind in ("chat", "chat_administrators", "chat_member"):
            normalized["chat_id"] = self._lookup_chat(scope.get("chat_id"))["id"]
        if kind == "chat_member":
            user_id = scope.get("user_id")
            if user_id in (None, ""):
                raise bad("user not found")
            normalized["user_id"] = int(user_id)
        return json.dumps(normalized, sort_keys=True)

    def _m_setMyCommands(self, params: JSONDict) -> bool:
        cleaned = validate_commands(params.get("commands"))
        key = (self._scope_key(params.get("scope")), language(params))
        with self._lock:
            if cleaned:
                self._commands[key] = cleaned
            else:
                self._commands.pop(key, None)
        return True

    def _m_getMyCommands(self, params: JSONDict) -> list[JSONDict]:
        key = (self._scope_key(params.get("scope")), language(params))
        with self._lock:
            return list(self._commands.get(key, []))

    def _m_deleteMyCommands(self, params: JSONDict) -> bool:
        key = (self._scope_key(params.get("scope")), language(params))
        with self._lock:
            self._commands.pop(key, None)
        return True

    def _set_bot_text(self, params: JSONDict, kind: str, field_name: str, limit: int) -> bool:
        value = str(params.get(field_name) or "")
        if len(value) > limit:
            raise bad(f"{kind} is too long")
        key = (kind, language(params))
        with self._lock:
            self._bot_texts[key] = value
        return True

    def _get_bot_text(self, params: JSONDict, kind: str, field_name: str) -> JSONDict:
        key = (kind, language(params))
        with self._lock:
            value = self._bot_texts.get(key)
            if value is None:
                value = self._bot_texts.get((kind, ""), "")
        if kind == "name" and not value:
            value = self.bot_first_name
        return {field_name: value}

    def _m_setMyDescription(self, params: JSONDict) -> bool:
        return self._set_bot_text(params, "description", "description", 512)

    def _m_getMyDescription(self, params: JSONDict) -> JSONDict:
        return self._get_bot_text(params, "description", "description")

    def _m_setMyShortDescription(self, params: JSONDict) -> bool:
        return self._set_bot_text(params, "short_description", "short_description", 120)

    def _m_getMyShortDescription(self, params: JSONDict) -> JSONDict:
        return self._get_bot_text(params, "short_description", "short_description")

    def _m_setMyName(self, params: JSONDict) -> bool:
        return self._set_bot_text(params, "name", "name", 64)

    def _m_getMyName(self, params: JSONDict) -> JSONDict:
        return self._get_bot_text(params, "name", "name")

    def _m_setChatMenuButton(self, params: JSONDict) -> bool:
        chat_id = param_int(params, "chat_id")
        button = params.get("menu_button") or {"type": "default"}
        if isinstance(button, Unparsable) or not isinstance(button, dict):
            raise bad("can't parse menu button JSON object")
        with self._lock:
            self._menu_buttons[chat_id] = button
        return True

    def _m_getChatMenuButton(self, params: JSONDict) -> JSONDict:
        chat_id = param_int(params, "chat_id")
        with self._lock:
            return dict(self._menu_buttons.get(chat_id) or {"type": "commands"})

    # --- messages

    def _m_sendMessage(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "sendMessage")
        text, entities = parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            html_strict=self.html_strict,
        )
        markup = validate_markup(params.get("reply_markup"), inline_only=False)
        preview = params.get("link_preview_options")
        if isinstance(preview, Unparsable) or (
            preview is not None and not isinstance(preview, dict)
        ):
            raise bad("can't parse link preview options JSON object")
        reply_to = self._reply_target(chat, params)
        thread_id = self._thread_of(chat, params)
        self._check_rate(chat, "sendMessage", paid=param_bool(params, "allow_paid_broadcast"))
        message: JSONDict = {
            "message_id": self._allocate_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self._in_thread(message, thread_id)
        if markup is not None:
            message["reply_markup"] = markup
        with self._lock:
            self._state.messages[(chat["id"], message["message_id"])] = message
        self._record_sent(
            SentMessage(
                "sendMessage",
                chat["id"],
                message["message_id"],
                params,
                text,
                entities,
                markup,
                message,
            )
        )
        return message

    def _m_sendPhoto(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "sendPhoto")
        caption, entities = parse_caption(params, html_strict=self.html_strict)
        markup = validate_markup(params.get("reply_markup"), inline_only=False)
        reply_to = self._reply_target(chat, params)
        with self._lock:
            sizes = photo_sizes(params.get("photo"), self._state.photos)
        thread_id = self._thread_of(chat, params)
        self._check_rate(chat, "sendPhoto", paid=param_bool(params, "allow_paid_broadcast"))
        message: JSONDict = {
            "message_id": self._allocate_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "photo": sizes,
        }
        if caption:
            message["caption"] = caption
        if entities:
            message["caption_entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self._in_thread(message, thread_id)
        if markup is not None:
            message["reply_markup"] = markup
        with self._lock:
            self._state.messages[(chat["id"], message["message_id"])] = message
        self._record_sent(
            SentMessage(
                "sendPhoto",
                chat["id"],
                message["message_id"],
                params,
                caption,
                entities,
                markup,
                message,
            )
        )
        return message

    def _m_editMessageText(self, params: JSONDict) -> JSONDict | bool:
        text, entities = parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            html_strict=self.html_strict,
        )
        markup = validate_markup(params.get("reply_markup"), inline_only=True)
        inline_id = param_str(params, "inline_message_id")
        if inline_id:
            self._record_sent(
                SentMessage(
                    "editMessageText", None, None, params, text, entities, markup, None, inline_id
                )
            )
            return True
        chat = self._target_chat(params, "editMessageText")
        message_id = param_int(params, "message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        existing = self._stored_message(chat, message_id, missing="message to edit not found")
        if existing.get("from", {}).get("id") != self.bot_id:
            raise bad("message can't be edited")
        if "text" not in existing:
            raise bad("there is no text in the message to edit")
        if (
            not existing.get("_unknown")
            and existing["text"] == text
            and existing.get("entities", []) == entities
            and existing.get("reply_markup") == markup
        ):
            raise bad(NOT_MODIFIED)
        self._check_rate(chat, "editMessageText", paid=False)
        existing["text"] = text
        existing["edit_date"] = int(time.time())
        existing.pop("entities", None)
        existing.pop("reply_markup", None)
        if entities:
            existing["entities"] = entities
        if markup is not None:
            existing["reply_markup"] = markup
        return self._store_edit("editMessageText", chat, existing, params)

    def _m_editMessageReplyMarkup(self, params: JSONDict) -> JSONDict | bool:
        markup = validate_markup(params.get("reply_markup"), inline_only=True)
        inline_id = param_str(params, "inline_message_id")
        if inline_id:
            self._record_sent(
                SentMessage(
                    "editMessageReplyMarkup", None, None, params, "", [], markup, None, inline_id
                )
            )
            return True
        chat = self._target_chat(params, "editMessageReplyMarkup")
        message_id = param_int(params, "message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        existing = self._stored_message(chat, message_id, missing="message to edit not found")
        if existing.get("from", {}).get("id") != self.bot_id:
            raise bad("message can't be edited")
        if existing.get("reply_markup") == markup and not existing.get("_unknown"):
            raise bad(NOT_MODIFIED)
        self._check_rate(chat, "editMessageReplyMarkup", paid=False)
        existing.pop("reply_markup", None)
        existing["edit_date"] = int(time.time())
        if markup is not None:
            existing["reply_markup"] = markup
        return self._store_edit("editMessageReplyMarkup", chat, existing, params)

    def _m_deleteMessage(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, "deleteMessage")
        message_id = param_int(params, "message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        key = (chat["id"], message_id)
        with self._lock:
            if key in self._state.deleted or (
                self.strict_messages and key not in self._state.messages
            ):
                raise bad("message to delete not found")
            self._state.deleted.add(key)
            self._deleted_log.append(key)
        return True

    def _m_sendChatAction(self, params: JSONDict) -> bool:
        self._thread_of(self._target_chat(params, "sendChatAction"), params)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        return True

    # --- queries

    def _check_query(self, query_id: str | None) -> str:
        if not query_id:
            raise bad(QUERY_INVALID)
        with self._lock:
            if query_id in self._answered_queries or (
                self.strict_queries and query_id not in self._known_queries
            ):
                raise bad(QUERY_INVALID)
        return query_id

    def _m_answerCallbackQuery(self, params: JSONDict) -> bool:
        query_id = param_str(params, "callback_query_id")
        text = param_str(params, "text") or ""
        if len(text) > MAX_CALLBACK_TEXT:
            raise bad("MESSAGE_TOO_LONG")
        url = param_str(params, "url")
        if url and not re.match(r"^(https?|tg)://\S+$", url):
            raise bad("URL_INVALID")
        query_id = self._check_query(query_id)
        with self._lock:
            self._answered_queries.add(query_id)
            self._callback_answers.append(dict(params))
        return True

    def _m_answerInlineQuery(self, params: JSONDict) -> bool:
        query_id = param_str(params, "inline_query_id")
        results = params.get("results")
        if isinstance(results, Unparsable) or not isinstance(results, list):
            raise bad("can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise bad("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        parsed = [
            validate_inline_result(result, seen, html_strict=self.html_strict) for result in results
        ]
        next_offset = param_str(params, "next_offset") or ""
        if len(next_offset.encode("utf-8")) > 64:
            raise bad("NEXT_OFFSET_INVALID")
        button = params.get("button")
        if button is not None:
            if isinstance(button, Unparsable) or not isinstance(button, dict):
                raise bad("can't parse InlineQueryResultsButton JSON object")
            if not button.get("text"):
                raise bad("BUTTON_TEXT_INVALID")
            start = button.get("start_parameter")
            if start is not None and not re.match(r"^[A-Za-z0-9_-]{1,64}$", str(start)):
                raise bad("START_PARAM_INVALID")
        query_id = self._check_query(query_id)
        record = dict(params)
        record["parsed"] = parsed
        with self._lock:
            self._answered_queries.add(query_id)
            self._inline_answers.append(record)
        return True

    # --- chats

    def _m_getChat(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "getChat")
        info = dict(chat)
        info.setdefault("accent_color_id", 0)
        info.setdefault("max_reaction_count", 11)
        info.setdefault(
            "accepted_gift_types",
            {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    def _m_getChatMember(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "getChatMember")
        user_id = param_int(params, "user_id", required=True)
        assert user_id is not None
        with self._lock:
            member = self._state.members.get((chat["id"], user_id))
        if member is not None:
            return dict(member)
        return chat_member_dict(self._user(user_id), "member")

    def _m_getChatAdministrators(self, params: JSONDict) -> list[JSONDict]:
        chat = self._target_chat(params, "getChatAdministrators")
        with self._lock:
            return [
                dict(m)
                for (chat_id, _), m in self._state.members.items()
                if chat_id == chat["id"] and m["status"] in ("creator", "administrator")
            ]

    def _m_getChatMemberCount(self, params: JSONDict) -> int:
        chat = self._target_chat(params, "getChatMemberCount")
        if chat["type"] == "private":
            return 2
        with self._lock:
            count = sum(
                1
                for (chat_id, _), m in self._state.members.items()
                if chat_id == chat["id"] and m["status"] not in ("left", "kicked")
            )
        return max(count, 2)

    def _m_leaveChat(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, "leaveChat")
        self.set_member(chat["id"], self.bot_id, "left")
        return True
