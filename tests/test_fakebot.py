"""The fake Bot API server, exercised by the real python-telegram-bot ``Bot`` over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    ChatMemberAdministrator,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    MessageEntity,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CommandHandler, ContextTypes

from fakebot import (
    FakeBotAPI,
    RateLimits,
    callback_update,
    fake_bot_api,
    inline_update,
    message_update,
    my_chat_member_update,
    parse_html,
    utf16_len,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = 42
GROUP = -4001


@pytest.fixture
def server() -> Iterator[FakeBotAPI]:
    with fake_bot_api(rate_limits=False) as s:
        yield s


@pytest.fixture
async def bot(server: FakeBotAPI) -> AsyncIterator[Bot]:
    async with server.bot() as b:
        yield b


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# --------------------------------------------------------------------------- basics


async def test_get_me_and_send_message(server: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.username == "briefbot_test_bot"
    assert me.supports_inline_queries and me.can_join_groups

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])
    msg = await bot.send_message(
        USER,
        '<b>今日</b> brief  <a href="https://example.com">link</a> 😀<i>x</i>',
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
        disable_web_page_preview=True,
    )
    assert msg.text == "今日 brief  link 😀x"
    assert msg.chat.id == USER and msg.chat.type == "private"
    assert msg.from_user is not None and msg.from_user.id == me.id
    assert [e.type for e in msg.entities] == [
        MessageEntity.BOLD,
        MessageEntity.TEXT_LINK,
        MessageEntity.ITALIC,
    ]
    assert msg.entities[1].url == "https://example.com/"
    assert msg.entities[2].offset == utf16_len("今日 brief  link 😀")
    assert msg.reply_markup == keyboard

    (sent,) = server.messages_to(USER)
    assert sent.message_id == msg.message_id
    assert sent.text == msg.text
    assert sent.entities_of("bold") == ["今日"]
    assert sent.callback_data == ["more:1"]
    assert server.calls("sendMessage")[0].ok


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("a < b", 'Unsupported start tag ""'),
        ("AT&T", '"&"'),
        ("<foo>x</foo>", 'Unsupported start tag "foo"'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("x > y", '">"'),
        ('<span class="x">s</span>', "tg-spoiler"),
    ],
)
async def test_bad_html_is_rejected(server: FakeBotAPI, bot: Bot, text: str, detail: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities") as exc:
        await bot.send_message(USER, text, parse_mode=ParseMode.HTML)
    assert detail.lower() in exc.value.message.lower()
    assert server.sent == []
    (call,) = server.calls("sendMessage")
    assert call.status == 400 and call.params["text"] == text


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("&amp;", "&"),
        ("AT&amp;T", "AT&T"),
        ("&lt;b&gt; &quot;q&quot; &#39;&#x1F600;", '<b> "q" \'😀'),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1"),
        ("<tg-spoiler>s</tg-spoiler> <blockquote expandable>q</blockquote>", "s q"),
    ],
)
async def test_good_html(bot: Bot, text: str, plain: str) -> None:
    msg = await bot.send_message(USER, text, parse_mode="HTML")
    assert msg.text == plain


def test_html_parser_entities() -> None:
    plain, entities = parse_html(
        '<pre><code class="language-py">x</code></pre><a href="tg://user?id=7">u</a>'
    )
    assert plain == "xu"
    assert entities[0] == {"type": "pre", "offset": 0, "length": 1, "language": "py"}
    assert entities[1]["type"] == "text_mention" and entities[1]["user"]["id"] == 7


async def test_text_length_counts_utf16(bot: Bot) -> None:
    assert (await bot.send_message(USER, "a" * 4096)).text == "a" * 4096
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "a" * 4097)
    assert (await bot.send_message(USER, "😀" * 2048)).text == "😀" * 2048
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "😀" * 2049)
    # Markup does not count, only the parsed text.
    await bot.send_message(USER, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    for empty in ("", "   \n", "<b> </b>"):
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await bot.send_message(USER, empty, parse_mode="HTML")


async def test_markdown_v2(bot: Bot) -> None:
    msg = await bot.send_message(USER, r"*b* _i_ \. [l](https://x.org)", parse_mode="MarkdownV2")
    assert msg.text == "b i . l"
    with pytest.raises(BadRequest, match=r"(?i)Character '.' is reserved"):
        await bot.send_message(USER, "a.b", parse_mode="MarkdownV2")


async def test_inline_keyboard_validation(bot: Bot) -> None:
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 64)]])
    await bot.send_message(USER, "ok", reply_markup=ok)
    for data in ("d" * 65, "é" * 33):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data=data)]])
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
            await bot.send_message(USER, "too long data", reply_markup=markup)
    with pytest.raises(BadRequest, match=r"(?i)Text buttons are unallowed"):
        await bot.send_message(
            USER, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x")]])
        )


async def test_edit_and_delete(server: FakeBotAPI, bot: Bot) -> None:
    msg = await bot.send_message(USER, "v1")
    edited = await bot.edit_message_text("<b>v2</b>", USER, msg.message_id, parse_mode="HTML")
    assert not isinstance(edited, bool)
    assert edited.text == "v2" and edited.edit_date is not None
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<b>v2</b>", USER, msg.message_id, parse_mode="HTML")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("p", callback_data="p")]])
    await bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=markup)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=markup)
    assert [m.method for m in server.messages_to(USER)] == [
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
    ]
    assert await bot.delete_message(USER, msg.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, msg.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("v3", USER, msg.message_id)


# --------------------------------------------------------------------------- queries & commands


async def test_inline_query_answer_limits(server: FakeBotAPI, bot: Bot) -> None:
    def results(n: int) -> list[InlineQueryResultArticle]:
        return [
            InlineQueryResultArticle(
                str(i), f"t{i}", InputTextMessageContent(f"<b>{i}</b>", "HTML")
            )
            for i in range(n)
        ]

    with pytest.raises(BadRequest, match=r"(?i)RESULTS_TOO_MUCH"):
        await bot.answer_inline_query("q1", results(51))
    assert await bot.answer_inline_query("q1", results(50), next_offset="50")
    (answer,) = server.inline_answers
    assert answer["parsed"][3]["text"] == "3"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_inline_query("q1", results(1))
    bad = [InlineQueryResultArticle("a", "t", InputTextMessageContent("a < b", "HTML"))]
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.answer_inline_query("q2", bad)
    dup = [InlineQueryResultArticle("a", "t", InputTextMessageContent("x"))] * 2
    with pytest.raises(BadRequest, match=r"(?i)RESULT_ID_DUPLICATE"):
        await bot.answer_inline_query("q3", dup)
    with pytest.raises(BadRequest, match=r"(?i)NEXT_OFFSET_INVALID"):
        await bot.answer_inline_query("q4", results(1), next_offset="x" * 65)


async def test_answer_callback_query(server: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest):
        await bot.answer_callback_query("c1", text="x" * 201)
    assert await bot.answer_callback_query("c1", text="x" * 200)
    assert server.callback_answers[0]["callback_query_id"] == "c1"


async def test_set_my_commands_validation(server: FakeBotAPI, bot: Bot) -> None:
    commands = [BotCommand("find", "搜索"), BotCommand("today", "今日简报")]
    assert await bot.set_my_commands(commands)
    assert await bot.set_my_commands([BotCommand("find", "搜索")], language_code="zh")
    assert await bot.set_my_commands(commands[:1], scope=BotCommandScopeChat(GROUP))
    assert [c.command for c in await bot.get_my_commands()] == ["find", "today"]
    assert len(await bot.get_my_commands(language_code="zh")) == 1
    assert len(await bot.get_my_commands(scope=BotCommandScopeChat(GROUP))) == 1
    assert await bot.get_my_commands(language_code="en") == ()
    for bad, detail in [
        ([BotCommand("Find", "x")], "BOT_COMMAND_INVALID"),
        ([BotCommand("a" * 33, "x")], "BOT_COMMAND_INVALID"),
        ([BotCommand("find-it", "x")], "BOT_COMMAND_INVALID"),
        ([BotCommand("find", "")], "BOT_COMMAND_DESCRIPTION_INVALID"),
        ([BotCommand("find", "x" * 257)], "BOT_COMMAND_DESCRIPTION_INVALID"),
        ([BotCommand(f"c{i}", "x") for i in range(101)], "BOT_COMMANDS_TOO_MUCH"),
    ]:
        with pytest.raises(BadRequest, match=rf"(?i){detail}"):
            await bot.set_my_commands(bad)
    with pytest.raises(BadRequest, match=r"(?i)language code"):
        await bot.set_my_commands(commands, language_code="zh-hans")
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


# --------------------------------------------------------------------------- chats & faults


async def test_chats_and_members(server: FakeBotAPI, bot: Bot) -> None:
    server.add_chat(-1001234567890, "channel", title="Brief", username="brief_channel")
    chat = await bot.get_chat("@brief_channel")
    assert chat.id == -1001234567890 and chat.type == "channel"
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message("@nobody_here", "x")
    assert (await bot.get_chat(GROUP)).type == "group"
    assert isinstance(await bot.get_chat_member(GROUP, 7), ChatMemberMember)
    server.set_member(GROUP, server.bot_id, "administrator")
    admin = await bot.get_chat_member(GROUP, server.bot_id)
    assert isinstance(admin, ChatMemberAdministrator) and admin.user.is_bot
    server.set_member(GROUP, 8, "kicked")
    assert (await bot.get_chat_member(GROUP, 8)).status == "kicked"
    assert await bot.send_chat_action(USER, "typing")
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await bot.send_chat_action(USER, "dancing")


async def test_fault_injection(server: FakeBotAPI, bot: Bot) -> None:
    server.block(USER)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(USER, "x")
    server.unblock(USER)
    await bot.send_message(USER, "x")

    server.block(GROUP)
    with pytest.raises(Forbidden, match=r"(?i)bot was kicked from the group chat"):
        await bot.send_message(GROUP, "x")
    server.deactivate(43)
    with pytest.raises(Forbidden, match=r"(?i)user is deactivated"):
        await bot.send_message(43, "x")
    server.missing(44)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(44)

    server.migrate(-555, -1009999999999)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-555, "x")
    assert migrated.value.new_chat_id == -1009999999999
    assert (await bot.send_message(-1009999999999, "x")).chat.type == "supergroup"

    server.fail_next("sendMessage", 400, "Bad Request: custom")
    with pytest.raises(BadRequest, match=r"(?i)custom"):
        await bot.send_message(USER, "x")


async def test_random_faults_are_seeded_and_skip_get_me(server: FakeBotAPI, bot: Bot) -> None:
    server.error_rate_5xx = 1.0
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "x")
    assert (await bot.get_me()).id == server.bot_id  # exempt
    assert server.calls("sendMessage")[0].status in (500, 502)
    server.error_rate_5xx = 0.0
    server.drop_rate = 1.0
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "x")
    assert server.calls("sendMessage")[-1].status is None
    server.drop_rate = 0.0
    assert server.sent == []
    await bot.send_message(USER, "after the faults")  # the pool recovers


async def test_unknown_method_and_token(server: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    with pytest.raises(InvalidToken):
        async with Bot("123456:wrong", base_url=server.base_url):
            pass


def test_json_body_and_keep_alive(server: FakeBotAPI) -> None:
    url = f"{server.base_url}{server.token}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "x"}]]}
    with httpx.Client() as client:
        r1 = client.post(
            url,
            json={
                "chat_id": USER,
                "text": "<i>j</i>",
                "parse_mode": "HTML",
                "reply_markup": markup,
            },
        )
        r2 = client.post(
            url, data={"chat_id": str(USER), "text": "f", "reply_markup": json.dumps(markup)}
        )
        r3 = client.get(f"{server.base_url}{server.token}/getMe")
    assert r1.json()["result"]["entities"][0]["type"] == "italic"
    assert r2.json()["result"]["reply_markup"] == markup
    assert r3.json()["result"]["username"] == server.bot_username
    assert r1.headers["content-type"] == "application/json"


# --------------------------------------------------------------------------- flood limits


async def test_flood_limits() -> None:
    with fake_bot_api(limits=RateLimits(private_burst=2, group_burst=3)) as server:
        async with server.bot() as bot:
            await bot.send_message(USER, "1")
            await bot.send_message(USER, "2")
            with pytest.raises(RetryAfter) as flood:
                await bot.send_message(USER, "3")
            assert retry_seconds(flood.value) >= 1
            assert "retry after" in (server.calls("sendMessage")[-1].description or "")
            for i in range(3):
                await bot.send_message(GROUP, str(i))
            with pytest.raises(RetryAfter) as group_flood:
                await bot.send_message(GROUP, "4")
            assert retry_seconds(group_flood.value) >= 1  # 20/minute → 3 s per message
            assert server.count_429 == 2

    # The global limit over many chats; paid broadcast has its own, higher one.
    global_limits = RateLimits(global_per_second=1, global_burst=5)
    with fake_bot_api(limits=global_limits) as server:
        async with server.bot() as bot:
            for chat_id in range(1000, 1005):
                await bot.send_message(chat_id, "x")
            with pytest.raises(RetryAfter):
                await bot.send_message(2000, "x")
            await bot.send_message(2001, "x", allow_paid_broadcast=True)
            assert server.count_429 == 1


async def test_rate_scale() -> None:
    limits = RateLimits(private_burst=1)
    with fake_bot_api(limits=limits, rate_scale=20, fractional_retry_after=True) as server:
        async with server.bot() as bot:
            await bot.send_message(USER, "1")
            with pytest.raises(RetryAfter) as flood:
                await bot.send_message(USER, "2")
            assert 0 < retry_seconds(flood.value) <= 0.05
            await asyncio.sleep(0.06)
            await bot.send_message(USER, "3")


# --------------------------------------------------------------------------- updates


async def test_get_updates_long_polling(server: FakeBotAPI, bot: Bot) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient() as client:  # the server also takes fractional timeouts
        empty = await client.post(
            f"{server.base_url}{server.token}/getUpdates", data={"timeout": "0.2"}
        )
    assert empty.json() == {"ok": True, "result": []}
    assert time.monotonic() - started >= 0.15

    async def push_later() -> None:
        await asyncio.sleep(0.2)
        server.push_message(GROUP, "/find@briefbot_test_bot 人工智能")

    task = asyncio.create_task(push_later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=10)
    await task
    assert time.monotonic() - started < 3
    (update,) = updates
    assert update.message is not None
    assert update.message.text == "/find@briefbot_test_bot 人工智能"
    (entity,) = update.message.entities
    assert entity.type == MessageEntity.BOT_COMMAND and entity.length == len(
        "/find@briefbot_test_bot"
    )
    assert update.message.from_user is not None
    assert update.message.from_user.language_code == "zh-hans"

    # The update is confirmed by the next offset.
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert server.pending_updates == []


async def test_get_updates_conflicts(server: FakeBotAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    async with server.bot() as other:  # a second bot instance polling
        await other.get_updates(timeout=0)
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await first
    await bot.set_webhook("https://example.com/hook", secret_token="s3cret")
    assert (await bot.get_webhook_info()).url == "https://example.com/hook"
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)HTTPS URL"):
        await bot.set_webhook("http://example.com/hook")
    assert await bot.delete_webhook()


def test_update_builders_parse() -> None:
    bot = Bot("123456:TEST-token")
    built = [
        message_update(USER, "/start"),
        message_update(GROUP, "hello", chat_type="group", user_id=9),
        callback_update(USER, 5, "page:2", message_text="brief"),
        inline_update("ai", offset="10"),
        my_chat_member_update(USER, "private", "member", "kicked"),
    ]
    updates = [Update.de_json(u, bot) for u in built]
    assert updates[0].message is not None and updates[0].message.entities[0].length == 6
    assert updates[2].callback_query is not None and updates[2].callback_query.data == "page:2"
    assert updates[3].inline_query is not None and updates[3].inline_query.offset == "10"
    member = updates[4].my_chat_member
    assert member is not None and member.new_chat_member.status == "kicked"


async def test_application_round_trip(server: FakeBotAPI) -> None:
    async def find(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("下一页", callback_data="p:2")]])
        await update.effective_message.reply_html(
            f"<b>结果</b>: {' '.join(context.args or [])}", reply_markup=keyboard
        )

    app = Application.builder().token(server.token).base_url(server.base_url).build()
    app.add_handler(CommandHandler("find", find))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        server.push_message(GROUP, "/find@briefbot_test_bot AI")
        server.push_my_chat_member(USER, "member", "kicked")
        (reply,) = await server.wait_sent_async(1, chat_id=GROUP)
        assert reply.text == "结果: AI" and reply.callback_data == ["p:2"]
        await app.updater.stop()
        await app.stop()
    async with server.bot() as bot:
        with pytest.raises(Forbidden, match=r"(?i)blocked"):
            await bot.send_message(USER, "x")


async def test_delay_and_explicit_faults(server: FakeBotAPI, bot: Bot) -> None:
    server.delay = 0.2
    started = time.monotonic()
    await bot.get_me()  # exempt from random faults and delay
    assert time.monotonic() - started < 0.15
    await bot.send_message(USER, "slow")
    assert time.monotonic() - started >= 0.2
    server.delay = 0.0
    server.drop_next("getMe")  # explicit injection applies to any method
    with pytest.raises(NetworkError):
        await bot.get_me()
    assert (await bot.get_me()).id == server.bot_id
    assert [m.text for m in server.wait_sent(1, chat_id=USER, timeout=0.1)] == ["slow"]
