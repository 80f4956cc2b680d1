"""Write a synthetic archive in the real format: one Markdown file per month, one issue a day.

Usage: ``python -m bench.gen_archive OUT_DIR --years 20 [--items-per-issue 10] [--seed 1]``

Texts are assembled from a few hundred Chinese and English words so that an index sees a
realistic spread of rare and common terms; the output is the same for the same seed.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import datetime as dt
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


COMPANIES = _words(
    "小米 华为 英伟达 台积电 比亚迪 腾讯 阿里巴巴 百度 字节跳动 京东 美团 拼多多 联想 中兴 "
    "海康威视 大疆 宁德时代 蔚来 小鹏汽车 理想汽车 吉利 长城汽车 上汽 广汽 奇瑞 特斯拉 苹果 "
    "谷歌 微软 亚马逊 三星 英特尔 高通 联发科 博通 超威半导体 美光 海力士 索尼 松下 东芝 夏普 "
    "佳能 中芯国际 华虹半导体 长江存储 长鑫存储 紫光展锐 寒武纪 地平线 商汤科技 旷视科技 "
    "科大讯飞 优必选 宇树科技 智元机器人 傅利叶 零跑汽车 极氪 问界 赛力斯 荣耀 魅族 中国移动 "
    "中国电信 中国联通 国家电网 阿斯麦 应用材料 泛林集团 东京电子 英飞凌 意法半导体 恩智浦 "
    "德州仪器 瑞萨电子 安森美 微芯科技 乐鑫科技 兆易创新 韦尔股份 北方华创 中微公司 立讯精密 "
    "歌尔股份 富士康 鸿海 比特大陆 蚂蚁集团 网易 快手 哔哩哔哩 小红书 携程 滴滴 月之暗面 "
    "智谱 百川智能 零一万物 深度求索 阶跃星辰 泰瑞达 优傲机器人 松下控股 京东方 华星光电 "
    "天马微电子 舜宇光学 蓝思科技 传音控股 中国电科 航天科技 商飞 亿航智能 小马智行 文远知行 "
    "萝卜快跑 极越汽车 岚图汽车 阿维塔 长安汽车 东风汽车 一汽 北汽 宝马 奔驰 大众 丰田 本田 "
    "日产 现代汽车 福特 通用汽车 甲骨文 国际商业机器 思科 戴尔 惠普 台达电子 瑞昱 群联 "
    "铠侠 西部数据 希捷 安谋 新思科技 楷登电子 华大九天 概伦电子 芯原股份 沐曦 摩尔线程 "
    "壁仞科技 燧原科技 天数智芯 海光信息 龙芯中科 飞腾 兆芯 平头哥 昆仑芯"
)

TECH = _words(
    "芯片 半导体 人工智能 机器人 新能源汽车 大模型 人形机器人 自动驾驶 智能驾驶 激光雷达 "
    "固态电池 锂电池 储能 光伏 晶圆 光刻机 先进封装 存储芯片 内存 闪存 处理器 服务器 数据中心 "
    "算力 云计算 边缘计算 物联网 卫星互联网 低轨卫星 量子计算 量子通信 操作系统 开源软件 鸿蒙 "
    "智能手机 折叠屏 可穿戴设备 智能手表 无线耳机 平板电脑 笔记本电脑 显卡 传感器 毫米波雷达 "
    "碳化硅 氮化镓 功率器件 模拟芯片 微控制器 嵌入式系统 单片机 开发板 无人机 低空经济 "
    "飞行汽车 充电桩 换电站 电驱系统 热管理 智能座舱 车规级芯片 工业互联网 数字孪生 元宇宙 "
    "虚拟现实 增强现实 混合现实 区块链 加密货币 网络安全 数据安全 隐私计算 生成式人工智能 "
    "多模态模型 推理模型 智能体 具身智能 知识产权 供应链 产业链 晶体管 纳米制程 "
    "光模块 光通信 交换机 路由器 基站 射频前端 图像传感器 显示面板 柔性屏 机械臂 减速器 "
    "伺服电机 工业机器人 服务机器人 扫地机器人 智能家居 智能音箱 语音助手 搜索引擎 "
    "短视频 电子商务 移动支付 数字人民币 芯片设计 晶圆代工 封装测试 硅片 光刻胶 "
    "电子设计自动化 开源社区 编程语言 编译器 数据库 分布式存储 超级计算机 液冷 "
    "电力电子 氢能源 燃料电池 动力电池 钠离子电池 智能电网 脑机接口 基因测序 医疗影像"
)

ACTIONS = _words(
    "发布了 宣布推出 正式推出 完成了 获得了 宣布收购 追加投资 起诉了 宣布扩产 开源了 "
    "全面升级了 开始量产 启动交付 宣布暂停 签署了合作协议，共同研发 披露了 公布了 "
    "首次展示了 推迟发布 下调了 上调了 突破了 刷新了 领跑 布局 押注 重组了 剥离了 "
    "拆分上市 完成新一轮融资，用于 申请了 获批 通过认证的 降价销售 召回了 停产了 "
    "提前发布 曝光了 回应了关于 否认了关于 确认了关于"
)

OPENERS = _words(
    "近日 今日 昨日 本周 日前 据报道 据外媒报道 消息称 据知情人士透露 北京时间周一 "
    "当地时间周二 当地时间周三 周四晚间 周五盘后 大年初七 开年以来 上半年 今年以来 "
    "在深圳 在上海 在北京 在杭州 在硅谷 在东京 在慕尼黑 在台北 在首尔 在拉斯维加斯 "
    "在巴塞罗那 在新加坡"
)

CLAUSES = (
    "此举引发业界广泛关注和讨论",
    "市场反应积极",
    "业内人士认为这将重塑行业格局",
    "分析师指出竞争将进一步加剧",
    "这一数字创下历史新高",
    "相关产品将于下半年上市",
    "公司股价随即大涨",
    "消息公布后股价应声下跌",
    "该项目不断发展并满足不同的行业需求",
    "实现了跨越式的发展",
    "目前尚未对外公布具体细节",
    "双方将在多个领域展开深度合作",
    "此前曾多次传出相关消息",
    "监管部门表示将持续关注",
    "用户反馈整体良好",
    "国产替代进程明显加快",
    "海外市场成为新的增长点",
    "研发投入持续加大",
    "行业整合仍在继续",
    "价格战愈演愈烈",
    "订单已排到明年",
    "良率仍有待提升",
    "产能利用率维持高位",
    "这是该公司成立以来最大的一笔交易",
    "多家媒体对此进行了报道",
    "官方回应称一切以公告为准",
    "开发者社区反响热烈",
    "这也意味着竞争进入新阶段",
    "接下来几个月将陆续开放公测",
    "标志着国产化迈出关键一步",
)

PERCENT_METRICS = (
    "营收同比增长",
    "净利润同比下降",
    "出货量环比增长",
    "市场份额达到",
    "毛利率提升至",
    "研发费用占比",
    "交付量同比增长",
    "股价盘中一度上涨",
    "估值较上一轮上涨",
    "订单量增长",
)

AMOUNT_METRICS = (
    ("全年营收达到", ("亿元", "亿美元")),
    ("单月交付新车", ("台", "辆")),
    ("季度出货量突破", ("万台", "万片")),
    ("累计融资超过", ("亿元", "亿美元")),
    ("全球用户数突破", ("万", "亿")),
    ("业务覆盖", ("个国家和地区", "个城市")),
    ("已累计申请", ("项专利", "项发明专利")),
    ("计划裁员", ("人", "名员工")),
)

# Multi-word names (Llama 3, Vision Pro) sit apart from the space-separated single words.
ENGLISH_PHRASES = (
    "Llama 3",
    "Raspberry Pi",
    "Vision Pro",
    "Hugging Face",
    "Micro LED",
    "Apple M4",
    "RTX 5090",
    "Wi-Fi 7",
)
ENGLISH = (
    *_words(
        "DeepSeek OpenAI Qwen2.5-Max STM32U0 AT&T RISC-V GPU IPO ChatGPT GPT-4o Claude-3.5-Sonnet "
        "Gemini Copilot Android iOS Linux Windows ARM x86 CUDA HBM DDR5 PCIe USB-C AI AIGC SoC "
        "MCU FPGA ASIC TPU NPU EDA OLED Zephyr openEuler Rust Python GitHub Kubernetes ESP32 "
        "Arduino H100 B200 Blackwell Starlink SpaceX Figure Optimus LLM DeepSeek-R1 "
        "o1-mini Grok Sora Midjourney Bluetooth LoRa NB-IoT R&D M&A 5G 6G Xeon EPYC "
        "Snapdragon Dimensity Exynos Ryzen Vulkan WebAssembly PyTorch TensorFlow"
    ),
    *ENGLISH_PHRASES,
)

LINK_LABELS = ("更多", "原文", "详情", "官方公告", "发布会回放")
LINK_HOSTS = ("https://example.com/news/", "https://www.ithome.com/0/", "https://36kr.com/p/")
URL_PREFIX = "https://mp.weixin.qq.com/s/"
# Offsets from the mean item count, averaging exactly zero: most issues hold 8-12 items,
# a few run to 15, as the real archive does.
_COUNT_OFFSETS = (-2,) * 6 + (-1,) * 7 + (0,) * 5 + (1,) * 3 + (2,) * 2 + (3, 4, 5)
ISSUE_SUFFIX = "💡行业快讯"
MAX_SPAN_YEARS = 9999 - 1


class ItemWriter:
    """Builds item texts and URLs from one seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sentences: tuple[Callable[[], str], ...] = (
            self._announcement,
            self._metric,
            self._partnership,
            self._english_launch,
            self._remark,
            self._quote,
            self._forecast,
        )

    def percent(self) -> str:
        return f"{self.rng.randint(1, 300)}.{self.rng.randint(0, 9)}%"

    def amount(self) -> str:
        phrase, units = self.rng.choice(AMOUNT_METRICS)
        return f"{phrase}{self.rng.randint(2, 99999):,}{self.rng.choice(units)}"

    def english(self) -> str:
        return f" {self.rng.choice(ENGLISH)} "

    def _announcement(self) -> str:
        c = self.rng.choice
        return f"{c(OPENERS)}，{c(COMPANIES)}{c(ACTIONS)}{c(TECH)}相关产品，{c(CLAUSES)}。"

    def _metric(self) -> str:
        r = self.rng
        when = f"{r.randint(2000, 2030)}年{r.randint(1, 12)}月"
        if r.random() < 0.5:
            return f"{when}，{r.choice(COMPANIES)}{r.choice(PERCENT_METRICS)}{self.percent()}。"
        return f"{when}，{r.choice(COMPANIES)}{self.amount()}，{r.choice(CLAUSES)}。"

    def _quote(self) -> str:
        c = self.rng.choice
        return f"{c(COMPANIES)}表示，“{c(TECH)}将是未来十年最重要的方向”，{c(CLAUSES)}。"

    def _forecast(self) -> str:
        r = self.rng
        year = r.randint(2000, 2035)
        return f"机构预测，到{year}年全球{r.choice(TECH)}市场规模将增长{self.percent()}。"

    def _partnership(self) -> str:
        c = self.rng.choice
        return f"{c(COMPANIES)}与{c(COMPANIES)}在{c(TECH)}领域达成合作，{c(CLAUSES)}。"

    def _english_launch(self) -> str:
        c = self.rng.choice
        return f"{c(COMPANIES)}基于{self.english()}推出{c(TECH)}方案，{c(CLAUSES)}。"

    def _remark(self) -> str:
        c = self.rng.choice
        return f"{c(TECH)}与{c(TECH)}成为{self.english()}生态的焦点，{c(CLAUSES)}。"

    def text(self) -> str:
        target = self.rng.randint(60, 190)
        parts: list[str] = []
        size = 0
        while size < target:
            sentence = self.rng.choice(self.sentences)()
            if size and size + len(sentence) > 200:
                break
            parts.append(sentence)
            size += len(sentence)
        return self._decorate("".join(parts).replace("  ", " ").replace(" ，", "，"))

    def _decorate(self, text: str) -> str:
        roll = self.rng.random()
        if roll < 0.05:
            host = self.rng.choice(LINK_HOSTS)
            link = f"[{self.rng.choice(LINK_LABELS)}]({host}{self.rng.randint(1, 10**6)})"
            return f"{text}（{link}）"
        if roll < 0.08:
            word = self.rng.choice(TECH)
            return text.replace(word, f"**{word}**", 1) if word in text else f"**{word}**：{text}"
        return text

    def url(self) -> str | None:
        if self.rng.random() < 0.1:
            return None
        token = base64.urlsafe_b64encode(self.rng.randbytes(17)).decode()[:22]
        return URL_PREFIX + token


def item_count(rng: random.Random, mean: int) -> int:
    return max(1, mean + rng.choice(_COUNT_OFFSETS))


def render_issue(day: dt.date, writer: ItemWriter, count: int) -> str:
    """One ``## YYYY.MM.DD`` section; items 10+ get the 4-space URL indent, as in the archive."""
    y, m, d = f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"
    lines = [f"## {y}.{m}.{d}", "", f"{y}年{m}月{d}日 {ISSUE_SUFFIX}", ""]
    for number in range(1, count + 1):
        lines += [f"{number}. {writer.text()}", ""]
        url = writer.url()
        if url is not None:
            lines += [" " * (len(str(number)) + 2) + url, ""]
    return "\n".join(lines).rstrip("\n")


def month_days(year: int, month: int) -> list[dt.date]:
    return [dt.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


def write_month(out_dir: Path, year: int, month: int, writer: ItemWriter, mean: int) -> int:
    """Write ``YYYY/newsflash-YYYYMM.md``; returns how many items it holds."""
    sections = [f"# {year}年{month}月"]
    total = 0
    for day in month_days(year, month):
        count = item_count(writer.rng, mean)
        sections.append(render_issue(day, writer, count))
        total += count
    folder = out_dir / f"{year:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"newsflash-{year:04d}{month:02d}.md"
    # Three blank lines between the month heading and each issue, as the real files have.
    path.write_text("\n\n\n\n".join(sections) + "\n", encoding="utf-8")
    return total


def generate(
    out_dir: Path, years: int, seed: int = 1, start_year: int = 2000, items_per_issue: int = 10
) -> int:
    """Write ``years`` years of daily issues from January of ``start_year``; returns item count."""
    if years < 1 or start_year < 1 or start_year + years - 1 > MAX_SPAN_YEARS:
        raise ValueError(f"years {start_year}..{start_year + years - 1} must lie in 1..9998")
    writer = ItemWriter(random.Random(seed))
    total = 0
    for year in range(start_year, start_year + years):
        for month in range(1, 13):
            total += write_month(out_dir, year, month, writer, items_per_issue)
    return total


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gen_archive",
        description="Write a synthetic newsflash archive. Example: "
        "python -m bench.gen_archive /tmp/archive --years 20",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--items-per-issue", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start-year", type=int, default=2000)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        count = generate(args.out_dir, args.years, args.seed, args.start_year, args.items_per_issue)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(f"wrote {count:,} items to {args.out_dir} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
