"""How good a break after each token is: sentence ends, pauses, clause marks, then word-level hints (pure code)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import CLAUSE_END, TokenKind, ends_sentence

# Costs of a break after a token: 0 is perfect (a sentence end), 1 is an arbitrary word boundary.
SENTENCE_COST = 0.0
PAUSE_COST = 0.1
CLAUSE_COST = 0.3
OTHER_MARK_COST = 0.5
WORD_COST = 1.0
#: How much of a word boundary's cost a silence of ``pause`` ms or more takes away (shorter silences: pro rata).
GAP_BONUS = 0.5
ATTACHED_PENALTY = 0.6  # the next token clings to this one (的, 了, 吗 ...)
STICKY_PENALTY = 0.4  # this word leads into the next (the, of, I ...)
PHRASE_PENALTY = 0.3  # two English words/numbers inside Chinese text; a number and its unit
CONJUNCTION_BONUS = 0.3  # the next token starts a conjunction (但是, because ...)

#: Chinese characters that attach to what precedes them: a line or cue should not start with them.
ZH_ATTACHED = frozenset("的了吗呢吧啊呀嘛么们着过地得哦啦")
#: Chinese conjunctions by first character: a break before them is good.
ZH_CONJUNCTIONS: dict[str, tuple[str, ...]] = {
    "但": ("但是",),
    "因": ("因为", "因此"),
    "所": ("所以",),
    "而": ("而且", "而是"),
    "然": ("然后", "然而"),
    "如": ("如果",),
    "或": ("或者",),
    "可": ("可是",),
    "不": ("不过",),
    "虽": ("虽然",),
    "并": ("并且",),
    "还": ("还是",),
    "另": ("另外",),
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


EN_CONJUNCTIONS = _words(
    "and but or so because although though while when if that which who where then unless until since"
)
#: English words that should not end a line or cue: articles, prepositions, pronouns before their verb.
EN_STICKY = _words(
    "a an the to of in on at for with by from into onto my your his her its our their this these those "
    "i you he she we they it's i'm you're we're they're is are was were be been not no very"
)

#: Frequent two-character Chinese words: a break between their characters costs extra (FunASR gives one token per
#: character and no word boundaries; these cover much of everyday speech).
ZH_WORDS = _words(
    "一个 一些 一下 一起 一定 一样 一直 一般 一点 已经 以后 以前 以及 因为 所以 但是 "
    "可是 如果 虽然 然后 而且 或者 还是 就是 不是 不要 不会 不能 不过 没有 可以 可能 "
    "应该 需要 觉得 知道 认为 希望 喜欢 开始 结束 发现 发展 发生 出现 进行 提高 提供 "
    "解决 研究 学习 工作 生活 时间 时候 现在 今天 明天 昨天 今年 明年 去年 以来 之后 "
    "之前 最后 最近 我们 你们 他们 她们 它们 大家 自己 别人 人们 什么 怎么 为什么 这个 "
    "那个 这些 那些 这样 那样 这里 那里 哪里 问题 事情 东西 地方 国家 社会 经济 政治 "
    "文化 历史 世界 中国 公司 企业 市场 技术 科学 教育 学生 老师 孩子 朋友 家庭 父母 "
    "妈妈 爸爸 先生 女士 同学 同事 领导 政府 城市 环境 经验 能力 方法 方式 方面 情况 "
    "结果 原因 目标 重要 非常 特别 比较 十分 真的 其实 当然 确实 也许 大概 还有 只是 "
    "只有 还要 为了 关于 对于 通过 根据 按照 作为 成为 表示 表达 告诉 觉得 感觉 了解 "
    "理解 注意 决定 继续 准备 参加 帮助 支持 影响 改变 变化 增加 减少 完成 实现 视频 "
    "电影 音乐 手机 电脑 网络 信息 数据 系统 软件 语音 识别 模型 字幕 声音 语言 文字 "
    "内容 节目 观众 今后 未来 过去 当时 同时 有些 所有 每个 很多 许多 多少 几个 第一 "
    "第二 部分 全部 左右 上面 下面 里面 外面 中间 前面 后面 旁边 时代 生命 身体 健康 "
    "心里 心情 机会 条件 关系 意思 意义 作用 水平 标准 质量 价格 安全"
)
#: First characters of ZH_WORDS (a cheap pre-check before building the pair).
ZH_WORD_FIRSTS = frozenset(w[0] for w in ZH_WORDS)
WORD_PENALTY = 0.5  # a break inside a known Chinese word

# Conjunction status of a token: none, certainly one, or the first character of a two-character Chinese one.
NO_CONJ, CONJ, CONJ_IF_NEXT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Traits:
    """What the break rules need to know about one token (computed once per distinct text and punctuation)."""

    kind: TokenKind
    sentence_end: bool
    punct_cost: float  # cost of a break after this token's punctuation (WORD_COST when it has none)
    attached: bool  # clings to the previous token
    sticky: bool  # leads into the next token
    conj: int  # NO_CONJ, CONJ or CONJ_IF_NEXT
    first: str  # first character (for two-character conjunction checks)
    last: str  # last character, when it may start a word of ZH_WORDS ("" otherwise)


def traits(text: str, punct: str, kind: TokenKind) -> Traits:
    lower = text.lower()
    punct_cost = WORD_COST
    if punct:
        punct_cost = CLAUSE_COST if any(ch in CLAUSE_END for ch in punct) else OTHER_MARK_COST
    conj = NO_CONJ
    if lower in EN_CONJUNCTIONS:
        conj = CONJ
    elif text and text[0] in ZH_CONJUNCTIONS:
        conj = CONJ if any(text.startswith(w) for w in ZH_CONJUNCTIONS[text[0]]) else CONJ_IF_NEXT
    return Traits(
        kind=kind,
        sentence_end=ends_sentence(text, punct),
        punct_cost=punct_cost,
        attached=kind == "cjk" and bool(text) and text[0] in ZH_ATTACHED,
        sticky=lower in EN_STICKY,
        conj=conj,
        first=text[:1],
        last=text[-1] if kind == "cjk" and text[-1:] in ZH_WORD_FIRSTS else "",
    )


def _latin_like(kind: TokenKind) -> bool:
    return kind in ("latin", "digit")


def boundary_costs(
    info: Sequence[Traits],
    starts: Sequence[int],
    ends: Sequence[int],
    settings: CueSettings,
) -> tuple[list[float], list[bool], list[bool], list[bool]]:
    """Per token k: (cost of a break after k, whether the break is hard, whether it ends a sentence, whether a
    clause mark ``，、；：,;:—`` follows k inside a sentence).

    A hard break is a sentence end or a silence longer than ``settings.pause``; the last token's break is hard.
    """
    n = len(info)
    pause = settings.pause
    scale = GAP_BONUS / max(pause, 1)
    zh = settings.profile == "zh"
    costs = [0.0] * n
    hard = [True] * n
    sentence = [True] * n
    clause = [False] * n
    for k in range(n - 1):
        tr = info[k]
        if tr.sentence_end:
            continue
        sentence[k] = False
        gap = starts[k + 1] - ends[k]
        if gap > pause:
            costs[k] = PAUSE_COST
            continue
        hard[k] = False
        cost = tr.punct_cost
        clause[k] = cost == CLAUSE_COST
        nxt = info[k + 1]
        if cost == WORD_COST:
            if nxt.attached:
                cost += ATTACHED_PENALTY
            if tr.sticky:
                cost += STICKY_PENALTY
            if (tr.kind == "digit" and nxt.kind == "cjk") or (zh and _latin_like(tr.kind) and _latin_like(nxt.kind)):
                cost += PHRASE_PENALTY  # a number and its unit; English words and names inside Chinese text
            elif tr.last and tr.last + nxt.first in ZH_WORDS:
                cost += WORD_PENALTY
        if gap > 0:
            cost -= scale * gap
        if nxt.conj == CONJ or (
            nxt.conj == CONJ_IF_NEXT
            and k + 2 < n
            and any(w[1:2] == info[k + 2].first for w in ZH_CONJUNCTIONS.get(nxt.first, ()))
        ):
            cost -= CONJUNCTION_BONUS
        costs[k] = cost if cost > PAUSE_COST else PAUSE_COST
    return costs, hard, sentence, clause
