"""Chinese subtitles in the form people write them (issue 18): one line, no ，。 at a line end, no fillers, phrases
kept whole — measured on every real reply and its no-punctuation variant (tests/subtitle_form.py), and against the
people-made subtitles in ../shared when they are beside the clone (skipped with the reason when not)."""

from __future__ import annotations

import itertools
import json
import re
import statistics
from pathlib import Path

import pytest

from funasr_subs.check import check_cues
from funasr_subs.cli import main
from funasr_subs.cues import CueSettings, build_cues
from funasr_subs.cues.grammar import bond, edges
from funasr_subs.model import Cue, Token
from funasr_subs.protocol import parse_reply
from tests.break_quality import chinese_share, measure, read_timed_cues
from tests.replies import LONG_REPLIES, REPLIES, read_reply
from tests.subtitle_form import Form, measure_form
from tests.test_cues_rules import tokens

ZH = CueSettings.for_profile("zh")
HUMAN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "human-subtitles"
#: The people's zh-Hans median share of phrase cuts, on this judge (measured 2026-12-06, shared/docs/subtitle-rules.md);
#: the test below measures it again in the same run when the files are there.
PEOPLE_ZH_HANS_MEDIAN_CUTS = 0.047
RULES_BUT_LINES = ("width", "short", "long", "cps", "gap", "overlap", "empty")


def _variants() -> list[tuple[str, list[Token]]]:
    out = []
    for name in LONG_REPLIES:
        toks = list(parse_reply(read_reply(REPLIES / name)).tokens)
        out.append((name[:2], toks))
        out.append((name[:2] + "-bare", [Token(t.text, t.start_ms, t.end_ms) for t in toks]))  # no punctuation model
    return out


VARIANTS = _variants()


def _form(cues: list[Cue], examples: int = 0) -> Form:
    return measure_form([(c.start_ms, c.end_ms, c.lines) for c in cues], keep_examples=examples)


@pytest.mark.parametrize(("label", "toks"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_real_replies_look_like_the_subtitles_people_write(label: str, toks: list[Token]) -> None:
    cues = build_cues(toks, ZH)
    form = _form(cues)
    assert form.one_line_share >= 0.90, label
    assert form.comma_end_share <= 0.05, label
    assert 1000 <= form.median_ms <= 3600, label  # the people's files: 1.9-3.6 s in 15 of 17
    assert form.fillers_per_1000 <= 0.5, label
    report = check_cues(cues, ZH)
    assert report.share_ok(*RULES_BUT_LINES) == 1.0, report.violations[:5]  # width, duration, speed, gaps: all
    assert measure([c.lines for c in cues], both=True).inside_both_share <= 0.01  # still no word split


def test_phrase_cuts_no_more_than_the_people_make() -> None:
    """The median over the real replies (as the people's figure is a median over files) is at most the people's
    zh-Hans median, judged the same way."""
    ours = [_form(build_cues(toks, ZH)).cut_share for label, toks in VARIANTS if "bare" not in label]
    assert statistics.median(ours) <= PEOPLE_ZH_HANS_MEDIAN_CUTS, ours


def test_the_people_files_measured_in_this_run() -> None:
    files = sorted(p for p in HUMAN.glob("zh-Hans/*") if p.suffix in (".srt", ".vtt"))
    if not files:
        pytest.skip(f"people-made subtitles not beside this clone ({HUMAN}): the fixed figure above stands in")
    shares = []
    for path in files:
        cues = read_timed_cues(path)
        if chinese_share([lines for _, _, lines in cues]) > 0.5:
            shares.append(measure_form(cues).cut_share)
    people = statistics.median(shares)
    ours = [_form(build_cues(toks, ZH)).cut_share for label, toks in VARIANTS if "bare" not in label]
    assert abs(people - PEOPLE_ZH_HANS_MEDIAN_CUTS) < 0.01, people  # the judge has not drifted
    assert statistics.median(ours) <= people


def test_the_form_before_is_one_option_away_and_gives_back_every_character() -> None:
    for label, toks in VARIANTS:
        cues = build_cues(toks, CueSettings.for_profile("zh", "asr"))
        shown = "".join("".join(c.lines) for c in cues)
        said = "".join(t.text + t.punct for t in toks)
        strip = re.compile(r"\s")
        assert strip.sub("", shown).lower() == strip.sub("", said).lower(), label
        assert (
            any(len(c.lines) == 2 for c in cues) and any(c.lines[-1].endswith("。") for c in cues)
        ) or "bare" in label


def test_the_default_drops_only_punctuation_and_fillers() -> None:
    fillers = re.compile(r"[^\w]|[呃嗯额唔啊]|那个|这个|就是说")
    for label, toks in VARIANTS:
        shown = "".join("".join(c.lines) for c in build_cues(toks, ZH))
        said = "".join(t.text for t in toks)
        assert fillers.sub("", shown).lower() == fillers.sub("", said).lower(), label


def test_punctuation_the_chinese_way() -> None:
    cues = build_cues(tokens("我们今天，讨论三个问题：成本、时间和质量。你同意吗？"), ZH)
    text = [c.lines for c in cues]
    assert text == [("我们今天 讨论三个问题",), ("成本、时间和质量",), ("你同意吗？",)]
    keep = build_cues(tokens("我们今天，讨论三个问题。"), CueSettings.for_profile("zh", punctuation="keep"))
    assert keep[0].lines == ("我们今天，讨论三个问题。",)


def test_fillers_are_left_out_but_the_cue_covers_their_speech() -> None:
    toks = tokens("呃，我们今天嗯讨论那个，成本问题。")
    cues = build_cues(toks, ZH)
    assert [c.lines for c in cues] == [("我们今天讨论 成本问题",)]
    assert cues[0].start_ms == toks[0].start_ms  # the cue starts when the speaker does, with the 呃
    verbatim = build_cues(toks, CueSettings.for_profile("zh", verbatim=True))
    assert "".join(verbatim[0].lines) == "呃 我们今天嗯讨论那个 成本问题"
    # 啊 and 那个 are words where they are not fillers
    words = build_cues(tokens("那个人来了啊。好啊。"), ZH)
    assert "".join("".join(c.lines) for c in words) == "那个人来了啊 好啊"


@pytest.mark.parametrize(
    ("text", "width", "bad"),
    [
        # (sentence, line width, a break that cuts a phrase): without the part-of-speech costs each is chosen
        ("我们认知的一切的执着都是空的", 10.0, "一切的|执着"),  # 的 before its head
        ("这个方案仅能获得较低的保底收益", 7.0, "较低的|保底收益"),
        ("当前要做好以下几项工作一是政府要落实", 7.0, "一是|政府要落实"),  # an item marker at a line end
    ],
)
def test_phrases_are_kept_whole_when_another_break_fits(text: str, width: float, bad: str) -> None:
    cues = build_cues(tokens(text + "。", step=300), CueSettings.for_profile("zh", max_width=width))
    shown = [c.lines[0] for c in cues]
    left, right = bad.split("|")
    for a, b in itertools.pairwise(shown):
        assert not (a.endswith(left) and b.startswith(right)), shown
    assert "".join(shown) == text  # nothing lost


def test_the_tagger_sees_each_kind_of_phrase() -> None:
    assert bond(edges("认知的")[0], edges("执着")[1]) > 0  # 的 before its head
    assert bond(edges("较")[0], edges("低")[1]) > 0  # an adverb before its adjective
    assert bond(edges("关于")[0], edges("五常")[1]) > 0  # a preposition before its object
    assert bond(edges("放")[0], edges("回来")[1]) > 0  # a verb before its complement
    assert bond(edges("种粮")[0], edges("大户")[1]) > 0  # a compound noun
    assert bond(edges("一是")[0], edges("五常市")[1]) > 0  # an item marker at a line end
    assert bond(edges("我们")[0], edges("但是")[1]) < 0  # a break before a conjunction is good


def test_one_line_becomes_two_only_where_the_speech_is_too_fast_to_read() -> None:
    slow = build_cues(tokens("这是一个很长的句子里面有很多很多的字需要读完。", step=400), ZH)
    assert all(len(c.lines) == 1 for c in slow)
    fast = build_cues(tokens("这是一个很长的句子|里面有很多很多的字需要读完。", step=90, pause=600), ZH)
    assert check_cues(fast, ZH).share_ok(*RULES_BUT_LINES) == 1.0


def test_retime_verbatim_restores_fillers_from_the_sidecar(tmp_path: Path) -> None:
    """The sidecar keeps the reply whole: the default leaves 呃 out, ``retime --verbatim`` puts it back."""
    text = "呃我们今天讨论成本问题"
    pairs = [[300 + 250 * k, 550 + 250 * k] for k in range(len(text))]
    reply = tmp_path / "reply.json"
    reply.write_text(
        json.dumps(
            {
                "is_final": False,
                "mode": "offline",
                "stamp_sents": [
                    {"end": pairs[-1][1], "punc": "。", "start": 300, "text_seg": " ".join(text), "ts_list": pairs}
                ],
                "text": text + "。",
                "timestamp": json.dumps(pairs),
                "wav_name": "x",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.srt"
    assert main(["retime", str(reply), "-o", str(out), "--overwrite"]) == 0
    assert "呃" not in out.read_text(encoding="utf-8")
    assert main(["retime", str(reply), "-o", str(out), "--verbatim", "--layout", "asr", "--overwrite"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "呃我们今天讨论成本问题。" in text


def test_a_layout_for_another_profile_is_said_to_do_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from funasr_subs import config

    config._WARNED.discard("layout")
    reply = REPLIES / "01_offline_cpp_asr_example_single_sentence.json"
    out = tmp_path / "out.srt"
    assert main(["retime", str(reply), "-o", str(out), "--profile", "en", "--layout", "two-line"]) == 0
    assert "--layout two-line shapes Chinese (zh) subtitles only" in capsys.readouterr().err
