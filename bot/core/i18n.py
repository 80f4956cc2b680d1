"""Reply texts in Chinese and English. A chat's language follows the user's Telegram
language (zh* is Chinese, anything else English) unless /lang chose one."""

from __future__ import annotations

LANGS = ("zh", "en")

_TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "welcome": (
            "👋 你好！我是 <b>行业快讯</b> 机器人。\n"
            "每天 {times}（{tz}）我会把最新一期快讯发到这里。\n\n"
            "试试：\n/latest 最新一期\n/date 2025-02-14 某天的快讯\n/find 小米 搜索全部存档\n"
            "/list 本月目录\n/help 全部命令\n\n发送 /stop 可随时退订。"
        ),
        "already": "这个聊天已经订阅了每日快讯。/stop 退订。",
        "stopped": "已退订，不会再收到每日快讯。/start 可重新订阅。",
        "not_subscribed": "这个聊天没有订阅。/start 订阅每日快讯。",
        "welcome_topic": "📌 快讯会发到这个话题；群里的其他话题各自订阅。",
        "already_topic": "这个话题已经订阅了每日快讯。在这里发送 /stop 只退订本话题。",
        "stopped_topic": "本话题已退订；群里其他话题的订阅不受影响。/start 可重新订阅。",
        "not_subscribed_topic": "这个话题没有订阅。在这里发送 /start，快讯就会发到本话题。",
        "admins_only": "抱歉，只有群管理员可以更改本群的订阅。",
        "empty_archive": "存档还是空的，稍后再试。",
        "no_issue": "{date} 没有快讯。",
        "no_issue_near": "{date} 没有快讯，看看最近的几期：",
        "date_usage": "用法：/date 2025-02-14\n也可以写 2025.02.14、2025年2月14日、2月14日、昨天、latest。",
        "bad_date": "看不懂这个日期：{text}\n可用的写法：{forms}",
        "find_usage": "用法：/find 小米\n多个词用空格分开（都要出现），可加日期：/find 芯片 2025-02",
        "find_none": "没有找到“{query}”。试试更短的词，或者去掉日期。",
        "bad_query": "搜索有问题：{error}",
        "query_empty": "没有要找的词，例如：/find 小米",
        "query_too_long": "查询太长（{n} 个字符，最多 {max} 个）",
        "query_term_too_long": "有个词太长（{n} 个字符，最多 {max} 个）",
        "query_too_many": "词太多（{n} 个，最多 {max} 个）",
        "query_filters": "只能有一个日期条件（2025、2025-02 或 2024-11..2025-01）",
        "query_bad_filter": "看不懂日期条件“{term}”，可以写 2025、2025-02 或 2024-11..2025-01",
        "query_invalid": "看不懂这个查询",
        "list_usage": "用法：/list 2025-02（不写月份就是最新一个月）",
        "list_empty": "{month} 没有快讯。",
        "list_header": "📅 <b>{month}</b> 共 {count} 期，点一下打开：",
        "help": (
            "<b>命令</b>\n"
            "/start 订阅每日快讯（群里需要管理员）\n/stop 退订\n"
            "/latest 最新一期\n/date 2025-02-14 某天的快讯（也可 2月14日、昨天）\n"
            "/find 小米 搜索存档（多个词空格分开；可加 2025-02 这样的日期）\n"
            "/list 2025-02 某月目录\n/trend 小米 华为 关键词随时间的走势图\n"
            "/time 08:30 设定每天的推送时间\n/quiet on 每日快讯静音送达\n"
            "/watch 小米 关注关键词，有新消息时提醒\n/unwatch 小米 取消关注\n"
            "/channel @频道 为你管理的频道订阅\n/lang en 切换语言（zh / en / auto）\n"
            "/help 本帮助\n\n也可以在任何聊天里输入 @{bot} 小米 直接搜索。"
        ),
        "unknown": "不认识这个命令。发送 /help 查看全部命令。",
        "lang_set": "语言已设为中文。",
        "lang_auto": "语言将跟随你的 Telegram 设置。",
        "lang_usage": "用法：/lang zh、/lang en 或 /lang auto",
        "slow_down": "太快了，请稍等几秒再试。",
        "error": "抱歉，出了点问题，已经记录下来了。请稍后再试。",
        "stale": "这个按钮已经过期了，请重新发送命令。",
        "prev": "◀ {date}",
        "next": "{date} ▶",
        "prev_page": "◀ 上一页",
        "next_page": "下一页 ▶",
        "admin_only": "这个命令只有管理员可以使用。",
        "time_show": "本聊天每天 {time}（{tz}）收到快讯。改时间：/time 07:45；恢复默认：/time default",
        "time_set": "好的，以后每天 {time}（{tz}）发送。",
        "time_usage": "用法：/time 08:30（24 小时制，{tz}）",
        "time_now": "好的，以后每期快讯一定稿就发到这里。恢复每天定时：/time default",
        "time_show_now": "本聊天每期快讯一定稿就收到。改成每天定时：/time 07:45；恢复默认：/time default",
        "watch_list": "你关注的关键词：\n{watches}\n\n/unwatch 关键词 取消",
        "watch_none": "还没有关注任何关键词。用法：/watch 小米",
        "watch_added": "已关注“{terms}”。新一期里有匹配的条目时会发给你。",
        "watch_exists": "已经在关注“{terms}”了。",
        "watch_limit": "最多关注 {limit} 个关键词，请先 /unwatch 一个。",
        "unwatch_done": "已取消关注“{terms}”。",
        "unwatch_missing": "没有关注“{terms}”。/watch 查看列表。",
        "unwatch_usage": "用法：/unwatch 小米",
        "channel_private": "请在和我的私聊里使用 /channel。",
        "channel_usage": "用法：/channel @频道名 订阅，/channel @频道名 off 退订，/channel 查看你管理的频道",
        "channel_none": "你还没有通过我订阅任何频道。",
        "channel_list": "你管理的频道：\n{channels}",
        "channel_not_found": "找不到频道 {name}。请检查名字，并先把我加为该频道的管理员。",
        "channel_bot_not_admin": "我还不是 {name} 的管理员，请先把我加为管理员（需要发消息权限）。",
        "channel_user_not_admin": "只有 {name} 的管理员才能为它订阅。",
        "channel_on": "{name} 已订阅每日快讯。",
        "channel_already": "{name} 已经订阅过了。",
        "channel_off": "{name} 已退订。",
        "channel_was_off": "{name} 本来就没有订阅。",
        "broadcast_usage": "用法：/broadcast 或 /broadcast 2025-02-14",
        "broadcast_started": "开始推送 {date}：{chats} 个聊天，{messages} 条消息。完成后会报告。",
        "broadcast_nothing": "{date} 已经发给了所有订阅者，没有要推送的。",
        "broadcast_error": "无法推送：{error}",
        "date_forms": "2025-02-14、2025.02.14、2025/2/14、20250214、2025年2月14日、2月14日或 02-14（最近的一次）、今天、昨天、最新",
        "needs_telegram": "这个命令需要 Telegram：请用 briefbot run 加上机器人 token 运行。",
        "stats": "<pre>{stats}</pre>",
        "corrected_mark": "✏️ 已更正",
        "merged_note": "（已并入上面的消息）",
        "trend_usage": "用法：/trend 小米\n每个词画一条线（最多 {limit} 个）：/trend 小米 华为；可加日期：/trend 小米 2024..2025",
        "trend_too_many": "一张图最多比较 {limit} 个词。",
        "trend_none": "没有找到“{query}”，画不出趋势。试试更短的词，或者去掉日期。",
        "trend_head": "📈 {start} 至 {end}，按{bucket}统计",
        "trend_month": "月",
        "trend_week": "周（以周一为准）",
        "trend_line": "{label}“{term}”：共 {total} 条，最多在 {peak}（{peak_count} 条），最早 {first}，最近 {last}",
        "trend_line_none": "{label}“{term}”：没有找到",
        "quiet_on": "好的，以后每日快讯静音送达（没有提示音）。/quiet off 恢复。",
        "quiet_off": "好的，以后每日快讯正常提醒。",
        "quiet_is_on": "本聊天的每日快讯静音送达。/quiet off 恢复提示音。",
        "quiet_is_off": "本聊天的每日快讯有提示音。/quiet on 改为静音送达。",
        "quiet_usage": "用法：/quiet on（静音送达）或 /quiet off",
        "channel_post": "📢 频道原文：{link}",
        "channel_post_item": "📢 {item} 频道原文：{link}",
    },
    "en": {
        "welcome": (
            "👋 Hello! I am the <b>daily tech brief</b> (行业快讯) bot.\n"
            "Every day at {times} ({tz}) I post the newest issue here.\n\n"
            "Try:\n/latest the newest issue\n/date 2025-02-14 one day's brief\n"
            "/find xiaomi search the whole archive\n/list this month's issues\n/help all commands\n\n"
            "Send /stop to unsubscribe at any time."
        ),
        "already": "This chat is already subscribed to the daily brief. /stop to unsubscribe.",
        "stopped": "Unsubscribed: no more daily briefs. /start subscribes again.",
        "not_subscribed": "This chat is not subscribed. /start subscribes to the daily brief.",
        "welcome_topic": "📌 The brief will be posted in this topic; other topics subscribe on their own.",
        "already_topic": "This topic is already subscribed. /stop here unsubscribes this topic only.",
        "stopped_topic": (
            "This topic is unsubscribed; the group's other subscriptions go on."
            " /start subscribes it again."
        ),
        "not_subscribed_topic": (
            "This topic is not subscribed. /start here posts the daily brief in this topic."
        ),
        "admins_only": "Sorry, only the group's administrators can change its subscription.",
        "empty_archive": "The archive is empty for now; try again later.",
        "no_issue": "No brief on {date}.",
        "no_issue_near": "No brief on {date}. The nearest issues:",
        "date_usage": "Usage: /date 2025-02-14\nAlso 2025.02.14, 2025年2月14日, 2月14日, yesterday, latest.",
        "bad_date": "Cannot read the date: {text}\nAccepted forms: {forms}",
        "find_usage": "Usage: /find xiaomi\nSeparate words with spaces (all must appear); add a date: /find AI 2025-02",
        "find_none": "Nothing found for “{query}”. Try a shorter word, or drop the date.",
        "bad_query": "Cannot search for that: {error}",
        "query_empty": "nothing to look for; for example /find xiaomi",
        "query_too_long": "the query is too long ({n} characters, at most {max})",
        "query_term_too_long": "a term is too long ({n} characters, at most {max})",
        "query_too_many": "too many terms ({n}, at most {max})",
        "query_filters": "give at most one date filter (2025, 2025-02 or 2024-11..2025-01)",
        "query_bad_filter": "cannot read the date filter '{term}'; write 2025, 2025-02 or 2024-11..2025-01",
        "query_invalid": "cannot read this query",
        "list_usage": "Usage: /list 2025-02 (no month: the latest one)",
        "list_empty": "No briefs in {month}.",
        "list_header": "📅 <b>{month}</b>: {count} issues; tap one to open it:",
        "help": (
            "<b>Commands</b>\n"
            "/start subscribe to the daily brief (admins only in groups)\n/stop unsubscribe\n"
            "/latest the newest issue\n/date 2025-02-14 one day's brief (also 2月14日, yesterday)\n"
            "/find xiaomi search the archive (words separated by spaces; add a date like 2025-02)\n"
            "/list 2025-02 a month's issues\n/trend xiaomi huawei a chart of a word over time\n"
            "/time 08:30 choose this chat's delivery time\n/quiet on deliver silently\n"
            "/watch xiaomi get new items that match\n/unwatch xiaomi stop watching\n"
            "/channel @channel subscribe a channel you manage\n/lang zh switch language (zh / en / auto)\n"
            "/help this help\n\nIn any chat, type @{bot} xiaomi to search inline."
        ),
        "unknown": "Unknown command. Send /help to see them all.",
        "lang_set": "Language set to English.",
        "lang_auto": "The language follows your Telegram settings again.",
        "lang_usage": "Usage: /lang zh, /lang en or /lang auto",
        "slow_down": "Slow down a little, please: try again in a few seconds.",
        "error": "Sorry, something went wrong; it has been logged. Please try again later.",
        "stale": "This button has expired; please send the command again.",
        "prev": "◀ {date}",
        "next": "{date} ▶",
        "prev_page": "◀ Previous",
        "next_page": "Next ▶",
        "admin_only": "This command is for the bot's administrators.",
        "time_show": "This chat gets the brief every day at {time} ({tz}). Change it: /time 07:45; back to the default: /time default",
        "time_set": "Done: from now on every day at {time} ({tz}).",
        "time_usage": "Usage: /time 08:30 (24-hour clock, {tz})",
        "time_now": "Done: from now on each issue comes here as soon as it is final. Back to a daily time: /time default",
        "time_show_now": "This chat gets each issue as soon as it is final. A daily time instead: /time 07:45; the default: /time default",
        "watch_list": "Your watched keywords:\n{watches}\n\n/unwatch keyword to stop",
        "watch_none": "No watched keywords yet. Usage: /watch xiaomi",
        "watch_added": "Watching “{terms}”: matching items of new issues will be sent here.",
        "watch_exists": "Already watching “{terms}”.",
        "watch_limit": "At most {limit} watches; /unwatch one first.",
        "unwatch_done": "Stopped watching “{terms}”.",
        "unwatch_missing": "Not watching “{terms}”. /watch lists them.",
        "unwatch_usage": "Usage: /unwatch xiaomi",
        "channel_private": "Please use /channel in a private chat with me.",
        "channel_usage": "Usage: /channel @name subscribes, /channel @name off unsubscribes, /channel lists your channels",
        "channel_none": "You have not subscribed any channel through me.",
        "channel_list": "Your channels:\n{channels}",
        "channel_not_found": "Cannot find the channel {name}. Check the name, and make me an administrator there first.",
        "channel_bot_not_admin": "I am not an administrator of {name} yet: add me as one (with the right to post).",
        "channel_user_not_admin": "Only administrators of {name} can subscribe it.",
        "channel_on": "{name} is subscribed to the daily brief.",
        "channel_already": "{name} was already subscribed.",
        "channel_off": "{name} is unsubscribed.",
        "channel_was_off": "{name} was not subscribed.",
        "broadcast_usage": "Usage: /broadcast or /broadcast 2025-02-14",
        "broadcast_started": "Broadcasting {date}: {chats} chats, {messages} messages. A report follows when done.",
        "broadcast_nothing": "{date} has reached every subscriber already; nothing to send.",
        "broadcast_error": "Cannot broadcast: {error}",
        "date_forms": "2025-02-14, 2025.02.14, 2025/2/14, 20250214, 2025年2月14日, 2月14日 or 02-14 (the most recent one), today, yesterday, latest",
        "needs_telegram": "This command needs Telegram: run briefbot run with a bot token.",
        "stats": "<pre>{stats}</pre>",
        "corrected_mark": "✏️ corrected",
        "merged_note": "(merged into the message above)",
        "trend_usage": "Usage: /trend xiaomi\nOne line per word (at most {limit}): /trend xiaomi huawei; add a date: /trend xiaomi 2024..2025",
        "trend_too_many": "One chart compares at most {limit} words.",
        "trend_none": "Nothing found for “{query}”, so there is no trend to draw. Try a shorter word, or drop the date.",
        "trend_head": "📈 {start} to {end}, per {bucket}",
        "trend_month": "month",
        "trend_week": "week (weeks start on Monday)",
        "trend_line": "{label}“{term}”: {total} items, peak {peak} ({peak_count}), first {first}, last {last}",
        "trend_line_none": "{label}“{term}”: nothing found",
        "quiet_on": "Done: the daily brief now arrives silently (no sound). /quiet off undoes it.",
        "quiet_off": "Done: the daily brief notifies as usual again.",
        "quiet_is_on": "This chat gets the daily brief silently. /quiet off to hear it again.",
        "quiet_is_off": "This chat gets the daily brief with a notification. /quiet on to mute it.",
        "quiet_usage": "Usage: /quiet on (deliver silently) or /quiet off",
        "channel_post": "📢 In the channel: {link}",
        "channel_post_item": "📢 {item} in the channel: {link}",
    },
}

# Command menus for setMyCommands, per language (Telegram shows the user's language).
COMMANDS: dict[str, list[tuple[str, str]]] = {
    "zh": [
        ("latest", "最新一期快讯"),
        ("date", "某天的快讯，如 /date 2025-02-14"),
        ("find", "搜索存档，如 /find 小米"),
        ("list", "某月目录，如 /list 2025-02"),
        ("trend", "走势图，如 /trend 小米 华为"),
        ("start", "订阅每日快讯"),
        ("stop", "退订"),
        ("time", "设定推送时间，如 /time 08:30"),
        ("quiet", "静音送达 on / off"),
        ("watch", "关注关键词"),
        ("unwatch", "取消关注关键词"),
        ("channel", "为你管理的频道订阅"),
        ("lang", "切换语言 zh / en / auto"),
        ("help", "全部命令"),
    ],
    "en": [
        ("latest", "The newest issue"),
        ("date", "One day's brief, e.g. /date 2025-02-14"),
        ("find", "Search the archive, e.g. /find xiaomi"),
        ("list", "A month's issues, e.g. /list 2025-02"),
        ("trend", "A chart over time, e.g. /trend xiaomi"),
        ("start", "Subscribe to the daily brief"),
        ("stop", "Unsubscribe"),
        ("time", "Delivery time, e.g. /time 08:30"),
        ("quiet", "Deliver silently: on / off"),
        ("watch", "Watch a keyword"),
        ("unwatch", "Stop watching a keyword"),
        ("channel", "Subscribe a channel you manage"),
        ("lang", "Language zh / en / auto"),
        ("help", "All commands"),
    ],
}


def lang_of(language_code: str | None) -> str:
    """zh* is Chinese; anything else (or nothing) English."""
    return "zh" if (language_code or "").lower().startswith("zh") else "en"


def t(lang: str, key: str, **values: object) -> str:
    table = _TEXTS.get(lang, _TEXTS["zh"])
    return table[key].format(**values) if values else table[key]


def query_problem(lang: str, err: object) -> str:
    """A QueryError in the chat's language (its ``key`` names the text)."""
    key = getattr(err, "key", "invalid")
    values = getattr(err, "values", {})
    try:
        return t(lang, f"query_{key}", **values)
    except (KeyError, IndexError):
        return t(lang, "query_invalid")
