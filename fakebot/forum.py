"""Forum topics: ``is_forum`` supergroups, their topics (open, closed, deleted), the forum
topic methods, and how a ``message_thread_id`` on a send is answered.

What Telegram answers, as looked up (not guessed):

- a closed topic: 400 ``Bad Request: TOPIC_CLOSED``;
- a deleted or unknown topic: 400 ``Bad Request: message thread not found``
  (tdlib/telegram-bot-api#472);
- ``message_thread_id`` in a chat that is not a forum (a private chat, a plain group, a
  supergroup without topics, where a message's thread id is only the root of a reply
  chain): the same ``message thread not found`` (tucnak/telebot#762: topics turned off);
- ``message_thread_id=1``, the General topic: ``message thread not found`` too
  (python-telegram-bot#4739); a message for General is sent without a thread id, and is
  refused ``TOPIC_CLOSED`` while an administrator has closed General
  (telegramdesktop/tdesktop#30476);
- ``createForumTopic`` in a chat that is not a forum: ``Bad Request: the chat is not a
  forum``; closing a closed topic (reopening an open one): ``Bad Request:
  TOPIC_NOT_MODIFIED``; a deleted or unknown topic there: ``Bad Request: TOPIC_ID_INVALID``.

Tests may change topics directly (:meth:`ForumTopics.create_topic`, ``close_topic``,
``reopen_topic``, ``delete_topic``) or through the methods, as an administrator's client
would. Deleting a topic deletes its messages, as Telegram does.
"""

from __future__ import annotations

from typing import Any

from .limits import LimitsAndFaults
from .updates import chat_dict, topic_created_dict
from .validation import bad, param_int, param_str

__all__ = ["GENERAL_TOPIC", "THREAD_NOT_FOUND", "TOPIC_CLOSED", "ForumTopics"]

JSONDict = dict[str, Any]

GENERAL_TOPIC = 1  # the General topic's id; it is never addressed by message_thread_id
THREAD_NOT_FOUND = "message thread not found"
TOPIC_CLOSED = "TOPIC_CLOSED"
_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)


class ForumTopics(LimitsAndFaults):
    """Forum supergroups and their topics (state in ``_state.topics``)."""

    # ------------------------------------------------------------------ configuration

    def make_forum(self, chat_id: int, title: str | None = None) -> JSONDict:
        """Make ``chat_id`` a supergroup with topics (``is_forum``); returns its Chat."""
        with self._lock:
            chat = self._state.chats.get(chat_id) or chat_dict(chat_id, "supergroup", title=title)
            chat["type"] = "supergroup"
            chat["is_forum"] = True
            if title is not None:
                chat["title"] = title
            self._state.chats[chat_id] = chat
            return dict(chat)

    def create_topic(self, chat_id: int, name: str = "Topic") -> int:
        """A new open topic in the forum ``chat_id`` (made a forum if it was not); returns
        its ``message_thread_id``: the id of its creation message, as in Telegram."""
        self.make_forum(chat_id)
        thread_id = self._allocate_message_id(chat_id)
        if thread_id == GENERAL_TOPIC:
            thread_id = self._allocate_message_id(chat_id)
        color = _ICON_COLORS[thread_id % len(_ICON_COLORS)]
        with self._lock:
            self._state.topics[(chat_id, thread_id)] = {
                "message_thread_id": thread_id,
                "name": name,
                "icon_color": color,
                "status": "open",
            }
            # The service message that opens the topic; its id is the thread's id.
            self._state.messages[(chat_id, thread_id)] = topic_created_dict(
                self._state.chats[chat_id], thread_id, name, color
            )
        return thread_id

    def close_topic(self, chat_id: int, thread_id: int) -> None:
        self._set_topic(chat_id, thread_id, "closed")

    def reopen_topic(self, chat_id: int, thread_id: int) -> None:
        self._set_topic(chat_id, thread_id, "open")

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """The topic and every message in it are gone."""
        self._set_topic(chat_id, thread_id, "deleted")
        with self._lock:
            for (cid, mid), message in self._state.messages.items():
                if cid == chat_id and message.get("message_thread_id") == thread_id:
                    self._state.deleted.add((cid, mid))

    def close_general(self, chat_id: int, closed: bool = True) -> None:
        """Close (or reopen) the forum's General topic: sends without a thread are refused."""
        self.make_forum(chat_id)
        with self._lock:
            if closed:
                self._state.general_closed.add(chat_id)
            else:
                self._state.general_closed.discard(chat_id)

    def topic_status(self, chat_id: int, thread_id: int) -> str | None:
        """``open``, ``closed``, ``deleted``, or None for a topic that never existed."""
        with self._lock:
            topic = self._state.topics.get((chat_id, thread_id))
        return None if topic is None else str(topic["status"])

    def _set_topic(self, chat_id: int, thread_id: int, status: str) -> None:
        with self._lock:
            topic = self._state.topics.get((chat_id, thread_id))
            if topic is None:
                raise KeyError(f"no topic {thread_id} in chat {chat_id}")
            topic["status"] = status

    # ------------------------------------------------------------------ applying them

    def _is_forum(self, chat: JSONDict) -> bool:
        with self._lock:
            known = self._state.chats.get(chat["id"], chat)
        return bool(known.get("is_forum"))

    def _thread_of(self, chat: JSONDict, params: JSONDict) -> int | None:
        """The topic a send names, checked as Telegram checks it (see the module doc)."""
        thread_id = param_int(params, "message_thread_id")
        if thread_id is None or thread_id == 0:
            with self._lock:
                general_closed = chat["id"] in self._state.general_closed
            if general_closed:
                raise bad(TOPIC_CLOSED)
            return None
        if not self._is_forum(chat) or thread_id == GENERAL_TOPIC:
            raise bad(THREAD_NOT_FOUND)
        with self._lock:
            topic = self._state.topics.get((chat["id"], thread_id))
            status = None if topic is None else topic["status"]
        if status in (None, "deleted"):
            raise bad(THREAD_NOT_FOUND)
        if status == "closed":
            raise bad(TOPIC_CLOSED)
        return thread_id

    @staticmethod
    def _in_thread(message: JSONDict, thread_id: int | None) -> None:
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True

    # ------------------------------------------------------------------ methods

    def _forum_topic(self, params: JSONDict, method: str) -> tuple[JSONDict, JSONDict]:
        chat = self._target_chat(params, method)
        if not self._is_forum(chat):
            raise bad("the chat is not a forum")
        thread_id = param_int(params, "message_thread_id", required=True)
        with self._lock:
            topic = self._state.topics.get((chat["id"], thread_id or 0))
        if topic is None or topic["status"] == "deleted":
            raise bad("TOPIC_ID_INVALID")
        return chat, topic

    def _m_closeGeneralForumTopic(self, params: JSONDict) -> bool:
        return self._general(params, "closeGeneralForumTopic", closed=True)

    def _m_reopenGeneralForumTopic(self, params: JSONDict) -> bool:
        return self._general(params, "reopenGeneralForumTopic", closed=False)

    def _general(self, params: JSONDict, method: str, *, closed: bool) -> bool:
        chat = self._target_chat(params, method)
        if not self._is_forum(chat):
            raise bad("the chat is not a forum")
        with self._lock:
            if (chat["id"] in self._state.general_closed) == closed:
                raise bad("TOPIC_NOT_MODIFIED")
        self.close_general(chat["id"], closed)
        return True

    def _m_createForumTopic(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "createForumTopic")
        if not self._is_forum(chat):
            raise bad("the chat is not a forum")
        name = param_str(params, "name") or ""
        if not 1 <= len(name) <= 128:
            raise bad("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
        thread_id = self.create_topic(chat["id"], name)
        with self._lock:
            topic = self._state.topics[(chat["id"], thread_id)]
        return {k: v for k, v in topic.items() if k != "status"}

    def _m_closeForumTopic(self, params: JSONDict) -> bool:
        _, topic = self._forum_topic(params, "closeForumTopic")
        with self._lock:
            if topic["status"] == "closed":
                raise bad("TOPIC_NOT_MODIFIED")
            topic["status"] = "closed"
        return True

    def _m_reopenForumTopic(self, params: JSONDict) -> bool:
        _, topic = self._forum_topic(params, "reopenForumTopic")
        with self._lock:
            if topic["status"] == "open":
                raise bad("TOPIC_NOT_MODIFIED")
            topic["status"] = "open"
        return True

    def _m_deleteForumTopic(self, params: JSONDict) -> bool:
        chat, topic = self._forum_topic(params, "deleteForumTopic")
        self.delete_topic(chat["id"], int(topic["message_thread_id"]))
        return True
