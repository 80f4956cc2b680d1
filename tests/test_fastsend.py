"""The lean sending transport: request bodies, the answers it reads, the error taxonomy
(the same as PTB's path: bot.telegram.transport.classify), and real HTTP to the fake."""

from __future__ import annotations

import json
from typing import Any

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.delivery.transport import Failure, SendError
from bot.telegram.fastsend import FastTransport, TokenRejected, classify_answer, message_id_of
from bot.telegram.transport import classify
from fakebot import FakeBotAPI, fake_bot_api

TOKEN = "123456:AAE-secret-token-of-the-bench-000000"


def answer(code: int, description: str, **parameters: Any) -> bytes:
    data: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        data["parameters"] = parameters
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("code", "description", "parameters", "ptb_error"),
    [
        (429, "Too Many Requests: retry after 3", {"retry_after": 3}, RetryAfter(3)),
        (400, "Bad Request: group chat was upgraded to a supergroup chat",
         {"migrate_to_chat_id": -1001234}, ChatMigrated(-1001234)),
        (403, "Forbidden: bot was blocked by the user", {},
         Forbidden("Forbidden: bot was blocked by the user")),
        (403, "Forbidden: user is deactivated", {}, Forbidden("Forbidden: user is deactivated")),
        (400, "Bad Request: chat not found", {}, BadRequest("Bad Request: chat not found")),
        (400, "Bad Request: PEER_ID_INVALID", {}, BadRequest("Bad Request: PEER_ID_INVALID")),
        (400, "Bad Request: message is too long", {},
         BadRequest("Bad Request: message is too long")),
        (400, "Bad Request: can't parse entities: unsupported start tag", {},
         BadRequest("Bad Request: can't parse entities: unsupported start tag")),
        (500, "Internal Server Error", {}, NetworkError("Internal Server Error")),
        (502, "Bad Gateway", {}, NetworkError("Bad Gateway")),
    ],
)  # fmt: skip
def test_answers_classify_as_ptb_errors_do(
    code: int, description: str, parameters: dict[str, Any], ptb_error: Exception
) -> None:
    ours = classify_answer(code, answer(code, description, **parameters))
    theirs = classify(ptb_error)  # type: ignore[arg-type]
    assert ours.failure is theirs.failure
    assert ours.retry_after == theirs.retry_after and ours.migrate_to == theirs.migrate_to
    if ours.failure not in (Failure.FLOOD, Failure.MIGRATED):
        assert ours.description == theirs.description  # what last_error stores


@pytest.mark.parametrize(
    ("code", "payload", "failure"),
    [
        (401, answer(401, "Unauthorized"), Failure.TRANSIENT),
        (404, answer(404, "Not Found"), Failure.TRANSIENT),
        (502, b"<html>bad gateway</html>", Failure.TRANSIENT),
        (500, b"[1, 2]", Failure.TRANSIENT),
        (400, b'{"ok": false}', Failure.REJECTED),
    ],
)
def test_odd_answers(code: int, payload: bytes, failure: Failure) -> None:
    err = classify_answer(code, payload)
    assert err.failure is failure
    assert isinstance(err, TokenRejected) == (code in (401, 404))


@pytest.mark.parametrize(
    ("payload", "message_id"),
    [
        (b'{"ok":true,"result":{"message_id":42,"date":1,"text":"x"}}', 42),
        (b'{"ok": true, "result": {"message_id": 7, "chat": {"id": 1}}}', 7),
        # message_id not first: read in full, never the reply's id
        (b'{"ok":true,"result":{"reply_to_message":{"message_id":1},"message_id":9}}', 9),
        (b'{"result":{"message_id":3},"ok":true}', 3),
    ],
)
def test_message_id_of(payload: bytes, message_id: int) -> None:
    assert message_id_of(payload) == message_id


def test_an_answer_without_a_result_is_transient() -> None:
    with pytest.raises(SendError) as info:
        message_id_of(b'{"ok":true,"result":true}')
    assert info.value.failure is Failure.TRANSIENT


@pytest.mark.parametrize(
    ("kw", "extra"),
    [
        ({}, {}),
        ({"paid": True}, {"allow_paid_broadcast": True}),
        (
            {"silent": True, "thread_id": 17},
            {"disable_notification": True, "message_thread_id": 17},
        ),
    ],
)
def test_bodies_are_json_with_only_the_chat_changing(
    kw: dict[str, Any], extra: dict[str, Any]
) -> None:
    transport = FastTransport(TOKEN)
    html = '<b>2月14日</b> "quoted" \\ \u2028 😀 <a href="https://x.y/?a=1&b=2">x</a>'
    for chat_id in (1, -1001234567890):
        assert json.loads(transport.body(chat_id, html, **kw)) == {
            "chat_id": chat_id,
            "text": html,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
            **extra,
        }
    assert len(transport._bodies) == 1  # serialised once for both chats


def test_redact_hides_the_token() -> None:
    text = FastTransport(TOKEN).redact(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage")
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


# -- real HTTP --------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Any:
    with fake_bot_api() as server:
        yield server


async def test_sends_and_refusals_through_the_fake(fake: FakeBotAPI) -> None:
    fake.block(2)
    fake.migrate(-50, -1_000_000_000_050)
    async with FastTransport(fake.token, base_url=fake.base_url, pool=2) as transport:
        first = await transport.send_html(1, "<b>你好</b>", paid=True, silent=True, thread_id=None)
        second = await transport.send_html(1, "<b>你好</b>")
        assert second != first
        with pytest.raises(SendError) as gone:
            await transport.send_html(2, "x")
        with pytest.raises(SendError) as moved:
            await transport.send_html(-50, "x")
        fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 2", {"retry_after": 2})
        with pytest.raises(SendError) as flood:
            await transport.send_html(3, "x")
        fake.drop_next("sendMessage")
        with pytest.raises(SendError) as dropped:
            await transport.send_html(4, "x")
        await transport.edit_html(1, first, "<i>改</i>")
    assert gone.value.failure is Failure.GONE
    assert (moved.value.failure, moved.value.migrate_to) == (Failure.MIGRATED, -1_000_000_000_050)
    assert (flood.value.failure, flood.value.retry_after) == (Failure.FLOOD, 2.0)
    assert dropped.value.failure is Failure.TRANSIENT
    [sent, _] = [c.params for c in fake.calls("sendMessage") if c.ok]
    assert sent["allow_paid_broadcast"] is True and sent["disable_notification"] is True
    assert [c.params["text"] for c in fake.calls("sendMessage")[:2]] == ["<b>你好</b>"] * 2
    [edit] = fake.calls("editMessageText")
    assert edit.ok and edit.params["message_id"] == first and edit.params["text"] == "<i>改</i>"


async def test_a_rejected_token_is_its_own_error(fake: FakeBotAPI) -> None:
    async with FastTransport("123:not-the-token", base_url=fake.base_url) as transport:
        with pytest.raises(TokenRejected):
            await transport.check_token()
        with pytest.raises(TokenRejected):
            await transport.send_html(1, "x")
    async with FastTransport(fake.token, base_url=fake.base_url) as transport:
        assert (await transport.check_token())["is_bot"] is True


async def test_an_unreachable_server_is_transient_and_shows_no_token() -> None:
    async with FastTransport(TOKEN, base_url="http://127.0.0.1:9/bot") as transport:
        with pytest.raises(SendError) as info:
            await transport.send_html(1, "x")
    assert info.value.failure is Failure.TRANSIENT
    assert TOKEN not in info.value.description
