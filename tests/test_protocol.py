"""The pure protocol layer: the first message's exact types and every reply shape FunASR sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funasr_subs.errors import NoTimestampsError, ProtocolError
from funasr_subs.protocol import END_MESSAGE, parse_reply, parse_session, split_tokens, start_message

#: Verbatim copies of the real replies in shared/data/funasr-responses (see SOURCES.md there).
REPLIES = Path(__file__).parent / "data" / "funasr-responses"


def load(name: str) -> str:
    return (REPLIES / name).read_text(encoding="utf-8")


def test_start_message_has_exact_json_types() -> None:
    msg = json.loads(
        start_message(wav_name="ep 1", wav_format="pcm", audio_fs=16000, itn=False, hotwords={"达摩院": 20})
    )
    assert msg["mode"] == "offline"
    assert type(msg["audio_fs"]) is int and msg["audio_fs"] == 16000
    assert msg["itn"] is False and msg["is_speaking"] is True
    assert isinstance(msg["hotwords"], str)  # a JSON *string*, not an object (FunASR #2805)
    assert json.loads(msg["hotwords"]) == {"达摩院": 20}
    assert isinstance(json.loads(msg["hotwords"])["达摩院"], int)
    assert msg["chunk_size"] == [5, 10, 5] and all(type(v) is int for v in msg["chunk_size"])
    assert msg["wav_format"] == "pcm" and msg["wav_name"] == "ep 1"
    assert json.loads(END_MESSAGE) == {"is_speaking": False}


def test_start_message_without_hotwords_leaves_the_key_out() -> None:
    assert "hotwords" not in json.loads(start_message(wav_name="a", wav_format="mp4"))


def test_real_offline_reply_gives_timed_tokens_with_punctuation() -> None:
    t = parse_reply(load("01_offline_cpp_asr_example_single_sentence.json"))
    assert "".join(tok.text for tok in t.tokens) == "欢迎大家来体验达摩院推出的语音识别模型"
    assert (t.tokens[0].start_ms, t.tokens[0].end_ms) == (880, 1120)
    assert (t.tokens[-1].start_ms, t.tokens[-1].end_ms, t.tokens[-1].punct) == (4780, 5195, "。")
    assert all(tok.punct == "" for tok in t.tokens[:-1])
    assert t.wav_name == "asr_example.wav"


def test_two_clause_reply_keeps_the_comma_on_the_clause_end() -> None:
    t = parse_reply(load("05_2pass_offline_h5_two_clauses.json"))
    assert [tok.punct for tok in t.tokens].count("，") == 1
    assert t.tokens[4].text == "午" and t.tokens[4].punct == "，"
    assert t.tokens[5].start_ms == 2209


def test_leading_punctuation_segment_with_empty_ts_list_is_skipped() -> None:
    t = parse_reply(load("06_2pass_offline_h5_leading_punctuation_empty_segment.json"))
    assert "".join(tok.text for tok in t.tokens) == "谁知盘中餐"
    assert t.tokens[0].start_ms == 4500  # not -1


def test_final_marker_with_empty_text_is_an_empty_transcript() -> None:
    t = parse_reply(load("08_2pass_final_marker_empty_text.json"))
    assert t.tokens == () and t.is_empty


def test_text_without_timestamps_names_the_timestamp_model() -> None:
    with pytest.raises(NoTimestampsError, match="speech_paraformer-large-vad-punc"):
        parse_reply(load("09_offline_cpp_2023_log_issue792_no_timestamp_model.json"))


def test_2pass_session_joins_the_offline_parts_only() -> None:
    lines = [json.loads(line) for line in load("10_2pass_full_session_h5.jsonl").splitlines() if line.strip()]
    t = parse_session(lines)
    assert "".join(tok.text for tok in t.tokens) == "锄禾日当午汗滴禾下土谁知盘中餐粒粒皆辛苦"
    starts = [tok.start_ms for tok in t.tokens]
    assert starts == sorted(starts) and starts[-1] == 7580


def test_stamp_sents_as_single_quoted_string_with_string_numbers() -> None:
    reply = {
        "text": "你好，世界。",
        "stamp_sents": "[{'text_seg': '你 好', 'punc': '，', 'start': '10', 'end': '50', "
        "'ts_list': [[10, 30], [30, 50]]},"
        " {'text_seg': '世 界', 'punc': '。', 'start': '60', 'end': '99', 'ts_list': [['60', '80'], ['80', '99']]}]",
    }
    t = parse_reply(reply)
    assert [(x.text, x.start_ms, x.end_ms, x.punct) for x in t.tokens] == [
        ("你", 10, 30, ""),
        ("好", 30, 50, "，"),
        ("世", 60, 80, ""),
        ("界", 80, 99, "。"),
    ]


@pytest.mark.parametrize("stamp_sents", ["", None, "not json at all"])
def test_unusable_stamp_sents_fall_back_to_text_and_timestamp(stamp_sents: object) -> None:
    reply = {"text": "今天，很好！", "timestamp": "[[0,100],[100,200],[300,400],[400,500]]"}
    if stamp_sents is not None:
        reply["stamp_sents"] = stamp_sents  # type: ignore[assignment]
    t = parse_reply(reply)
    assert [(x.text, x.punct) for x in t.tokens] == [("今", ""), ("天", "，"), ("很", ""), ("好", "！")]
    assert t.tokens[2].start_ms == 300


def test_timestamp_as_list_and_english_words() -> None:
    t = parse_reply({"text": "Hello world. It's 2024!", "timestamp": [[0, 300], [300, 600], [700, 900], [900, 1300]]})
    assert [(x.text, x.punct) for x in t.tokens] == [("Hello", ""), ("world", "."), ("It's", ""), ("2024", "!")]


def test_integer_timestamp_is_ignored_when_stamp_sents_exist() -> None:
    reply = json.loads(load("05_2pass_offline_h5_two_clauses.json"))
    reply["timestamp"] = 0
    assert len(parse_reply(reply).tokens) == 10


def test_inner_punctuation_that_does_not_split_segments_is_recovered_from_text() -> None:
    # the server splits only at ，。？、,? — so ！ stays inside a segment and only `text` carries it
    reply = {
        "text": "好啊！走吧。",
        "stamp_sents": [
            {
                "text_seg": "好 啊 走 吧",
                "punc": "。",
                "start": 0,
                "end": 400,
                "ts_list": [[0, 100], [100, 200], [200, 300], [300, 400]],
            }
        ],
    }
    t = parse_reply(reply)
    assert [x.punct for x in t.tokens] == ["", "！", "", "。"]


def test_token_count_mismatch_spreads_times_instead_of_failing() -> None:
    # ITN turns 一百 (two timed characters) into "100" (one token)
    t = parse_reply({"text": "花了100块", "timestamp": "[[0,100],[100,200],[200,300],[300,400],[400,500]]"})
    assert [x.text for x in t.tokens] == ["花", "了", "100", "块"]
    assert t.tokens[-1].end_ms == 500 and t.tokens[0].start_ms == 0


def test_times_never_run_backwards() -> None:
    t = parse_reply({"text": "一二三", "timestamp": "[[500,600],[100,200],[700,800]]"})
    starts = [x.start_ms for x in t.tokens]
    assert starts == sorted(starts)
    assert all(x.end_ms >= x.start_ms for x in t.tokens)


def test_empty_audio_reply_is_empty_not_an_error() -> None:
    t = parse_reply('{"is_final":false,"mode":"offline","text":"","wav_name":"x"}')
    assert t.is_empty


@pytest.mark.parametrize("raw", ["<html>502</html>", "[1, 2]", "42"])
def test_non_object_replies_are_protocol_errors(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(raw)


def test_split_tokens_units() -> None:
    assert split_tokens("我有3.5个apple和iPhone 15，好") == [
        "我",
        "有",
        "3.5",
        "个",
        "apple",
        "和",
        "iPhone",
        "15",
        "好",
    ]
