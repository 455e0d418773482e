"""The test server's stand-in for speech recognition: type checks, peak metering, bursts to a FunASR-shaped reply."""

from __future__ import annotations

import array
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

log = logging.getLogger(__name__)

FRAME_MS = 10
THRESHOLD = 1000  # peak amplitude (of 32767) above which a 10 ms frame counts as "speech"
MERGE_GAP_MS = 150
MIN_BURST_MS = 100
TOKEN_MS = 200
COMMA_AFTER_MS = 2000
POOL = "锄禾日当午汗滴下土谁知盘中餐粒皆辛苦春眠不觉晓处闻啼鸟夜来风雨声花落多少"  # no 达摩院 etc.

Shape = Literal[
    "normal",
    "stamp_sents_string",
    "numeric_strings",
    "stamp_sents_empty",
    "timestamp_list",
    "timestamp_int",
    "no_punc",
    "leading_punc",
]
SHAPES: tuple[str, ...] = get_args(Shape)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_message(msg: object) -> tuple[list[str], list[str]]:
    """Return (fatal, non_fatal) protocol violations of one text message, as the C++ server would meet them."""
    if not isinstance(msg, dict):
        return [f"message is a JSON {type(msg).__name__}, not an object"], []
    fatal: list[str] = []
    soft: list[str] = []
    for key in ("mode", "wav_name", "wav_format"):
        if key in msg and not isinstance(msg[key], str):
            fatal.append(f"{key} must be a string, got {msg[key]!r}")
    if "audio_fs" in msg and (not _is_int(msg["audio_fs"]) or msg["audio_fs"] <= 0):
        fatal.append(f"audio_fs must be a positive integer, got {msg['audio_fs']!r}")
    for key in ("itn", "is_speaking"):
        if key in msg and not isinstance(msg[key], bool):
            fatal.append(f"{key} must be a boolean, got {msg[key]!r}")
    if "chunk_size" in msg:
        cs = msg["chunk_size"]
        if not (isinstance(cs, list) and len(cs) == 3 and all(_is_int(v) for v in cs)):
            fatal.append(f"chunk_size must be a list of 3 integers, got {cs!r}")
    # the C++ server copies svs_lang/svs_itn into a std::string and a bool (websocket-server.cpp lines 365-370,
    # 390-391): another JSON type throws nlohmann's type_error there (inferred from the code, not seen running)
    if "svs_lang" in msg and not isinstance(msg["svs_lang"], str):
        fatal.append(f"svs_lang must be a string, got {msg['svs_lang']!r}")
    if "svs_itn" in msg and not isinstance(msg["svs_itn"], bool):
        fatal.append(f"svs_itn must be a boolean, got {msg['svs_itn']!r}")
    if "hotwords" in msg:
        hw = msg["hotwords"]
        if not isinstance(hw, str):
            fatal.append(f"hotwords must be a string holding a JSON object, got {type(hw).__name__} {hw!r}")
        else:
            soft.extend(_hotword_problems(hw))
    return fatal, soft


def _hotword_problems(text: str) -> list[str]:
    if not text.strip():
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return [f"hotwords string is not JSON ({text[:60]!r}): hotwords dropped"]
    if not isinstance(parsed, dict):
        return [f"hotwords JSON is not an object ({text[:60]!r}): hotwords dropped"]
    bad = [k for k, v in parsed.items() if not _is_int(v)]
    if bad:
        return [f"hotword weights must be integers (bad: {bad[:5]!r}): all hotwords dropped (#2805)"]
    return []


def parse_hotwords(text: str) -> dict[str, int]:
    """The hotwords the server would use from a ``hotwords`` string ({} when it would drop them)."""
    if _hotword_problems(text) or not text.strip():
        return {}
    parsed: dict[str, int] = json.loads(text)
    return parsed


class PeakMeter:
    """Incremental peak amplitude per 10 ms frame of s16le mono audio at ``rate`` Hz (pure Python, C-speed slices).

    Only every ``step``-th sample is looked at (about 4 kHz): an hour of 16 kHz audio takes under a second.
    """

    def __init__(self, rate: int = 16000, frame_ms: int = FRAME_MS) -> None:
        self.rate = rate
        self.frame_ms = frame_ms
        # fine frames (tests of timing precision) look at every sample
        self.step = max(1, rate // 4000) if frame_ms >= FRAME_MS else 1
        self.peaks: list[int] = []
        self._carry = b""
        self._base = 0  # index of the first sample in _carry

    def feed(self, data: bytes) -> None:
        buf = self._carry + data if self._carry else data
        n = len(buf) // 2
        samples = array.array("h")
        samples.frombytes(memoryview(buf)[: n * 2])
        if sys.byteorder == "big":
            samples.byteswap()
        pos = 0
        peaks = self.peaks
        rate, step = self.rate, self.step
        while True:
            end = (len(peaks) + 1) * rate * self.frame_ms // 1000 - self._base
            if end > n:
                break
            frame = samples[pos:end:step]
            peaks.append(max(max(frame), -min(frame)) if frame else 0)
            pos = end
        self._base += pos
        self._carry = bytes(buf[pos * 2 :])

    def finish(self) -> list[int]:
        """Flush a trailing partial frame and return the peaks."""
        n = len(self._carry) // 2
        if n:
            samples = array.array("h")
            samples.frombytes(self._carry[: n * 2])
            if sys.byteorder == "big":
                samples.byteswap()
            frame = samples[:: self.step]
            self.peaks.append(max(max(frame), -min(frame)))
            self._carry = b""
        return self.peaks


def detect_bursts(peaks: list[int], threshold: int = THRESHOLD, frame_ms: int = FRAME_MS) -> list[tuple[int, int]]:
    """Loud runs of ``frame_ms`` frames as (start_ms, end_ms): gaps < 150 ms merged, runs < 100 ms dropped."""
    runs: list[list[int]] = []
    for k, peak in enumerate(peaks):
        if peak <= threshold:
            continue
        if runs and (k - runs[-1][1] - 1) * frame_ms < MERGE_GAP_MS:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return [(a * frame_ms, (b + 1) * frame_ms) for a, b in runs if (b + 1 - a) * frame_ms >= MIN_BURST_MS]


@dataclass(frozen=True)
class Segment:
    """One punctuation-delimited piece: tokens with [start, end] ms and the closing mark."""

    tokens: tuple[str, ...]
    times: tuple[tuple[int, int], ...]
    punc: str


def sentences_for(bursts: Iterable[tuple[int, int]], hotword: str = "") -> list[Segment]:
    """Turn bursts into segments: N = dur // 200 tokens each, a "，" mid-way in bursts over 2 s, "。" at the end."""
    segments: list[Segment] = []
    counter = 0
    hot = _hotword_tokens(hotword)
    for start, end in bursts:
        dur = end - start
        n = max(1, dur // TOKEN_MS)
        times = tuple((start + i * dur // n, start + (i + 1) * dur // n) for i in range(n))
        tokens = [POOL[(counter + i) % len(POOL)] for i in range(n)]
        counter += n
        if hot and not segments:
            tokens[: len(hot)] = hot[:n]
        if dur > COMMA_AFTER_MS and n >= 2:
            half = n // 2
            segments.append(Segment(tuple(tokens[:half]), times[:half], "，"))
            segments.append(Segment(tuple(tokens[half:]), times[half:], "。"))
        else:
            segments.append(Segment(tuple(tokens), times, "。"))
    return segments


#: FunASR's timestamp code caps a token at 600 ms; a pause this long or longer ends a speech segment of its VAD.
HABIT_CAP_MS = 600
VAD_CUT_MS = 800


def habitual(segments: list[Segment], duration_ms: int) -> list[Segment]:
    """The same tokens timed the way FunASR's offline server times them (funasr-protocol.md, 2026 section): a token
    runs on to the next one's start (into any pause) but lasts at most 600 ms; the last token of a speech segment
    (before a pause of ``VAD_CUT_MS`` or more, or the end) ends halfway into the silence after it, and the first
    token after such a pause starts where that one ended, or 600 ms before its sound when the silence is longer."""
    times = [t for s in segments for t in s.times]
    moved: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(times):
        after = times[i + 1][0] if i + 1 < len(times) else None
        if after is None or after - end >= VAD_CUT_MS:
            limit = duration_ms if after is None else after
            new_end = end + max(0, limit - end) // 2
        else:
            new_end = max(end, min(after, start + HABIT_CAP_MS))
        before = times[i - 1][1] if i else None
        new_start = start
        if i and before is not None and start - before >= VAD_CUT_MS:
            new_start = max(moved[-1][1], start - HABIT_CAP_MS)
        moved.append((new_start, new_end))
    out, at = [], 0
    for s in segments:
        out.append(Segment(s.tokens, tuple(moved[at : at + len(s.tokens)]), s.punc))
        at += len(s.tokens)
    return out


def lose_stretch(segments: list[Segment], start_ms: int, end_ms: int) -> list[Segment]:
    """The segments without any token that starts in ``start_ms``-``end_ms``: FunASR's silent loss of part of a
    long recording (FunASR issues #1180, #1686, #2008)."""
    out = []
    for s in segments:
        kept = [(tok, t) for tok, t in zip(s.tokens, s.times, strict=True) if not start_ms <= t[0] < end_ms]
        if kept:
            out.append(Segment(tuple(tok for tok, _ in kept), tuple(t for _, t in kept), s.punc))
    return out


def _hotword_tokens(word: str) -> list[str]:
    if not word:
        return []
    if all("\u4e00" <= ch <= "\u9fff" for ch in word):
        return list(word)
    return [word]


def build_reply(
    wav_name: str, segments: list[Segment], *, timestamps: bool = True, shape: Shape = "normal"
) -> dict[str, Any]:
    """The offline server's single reply for one file, as a dict (serialise with ``dump_reply``)."""
    reply: dict[str, Any] = {"is_final": False, "mode": "offline", "wav_name": wav_name}
    if not segments:
        reply["text"] = ""
        return reply
    if shape == "no_punc":
        merged = Segment(tuple(t for s in segments for t in s.tokens), tuple(t for s in segments for t in s.times), "")
        segments = [merged]
    text = "".join("".join(s.tokens) + s.punc for s in segments)
    reply["text"] = text
    if not timestamps:
        return reply
    pairs = [list(t) for s in segments for t in s.times]
    sents: list[dict[str, Any]] = [
        {
            "end": s.times[-1][1],
            "punc": s.punc,
            "start": s.times[0][0],
            "text_seg": " ".join(s.tokens),
            "ts_list": [list(t) for t in s.times],
        }
        for s in segments
    ]
    reply["timestamp"] = json.dumps(pairs, separators=(",", ":"))
    reply["stamp_sents"] = sents
    if shape == "leading_punc":
        reply["text"] = "，" + text
        sents.insert(0, {"end": -1, "punc": "，", "start": -1, "text_seg": "", "ts_list": []})
    elif shape == "numeric_strings":
        for sent in sents:
            sent["start"], sent["end"] = str(sent["start"]), str(sent["end"])
    elif shape == "stamp_sents_string":
        # image 0.4.0 (#1220): a Python-repr-like string with single quotes and string start/end
        items = [
            f"{{'text_seg': '{s['text_seg']}', 'punc': '{s['punc']}', 'start': '{s['start']}', "
            f"'end': '{s['end']}', 'ts_list': {json.dumps(s['ts_list'])}}}"
            for s in sents
        ]
        reply["stamp_sents"] = "[" + ", ".join(items) + "]"
    elif shape == "stamp_sents_empty":
        reply["stamp_sents"] = ""
    elif shape == "timestamp_list":
        reply["timestamp"] = pairs
    elif shape == "timestamp_int":
        reply["timestamp"] = 0
    return reply


#: What the SenseVoice stand-in "hears" in each language (one token a 200 ms, as the Paraformer stand-in).
SENSEVOICE_WORDS = {
    "zh": list(POOL),
    "yue": list("佢哋喺度講緊嘢我哋聽日見啦"),
    "ja": list("こんにちはありがとうございます"),
    "ko": ["안녕하세요", "감사합니다", "오늘", "날씨가", "좋네요"],
    "en": ["hello", "world", "this", "is", "a", "test"],
    # not SenseVoice's: a newer or other model's language funasr-subs does not know (heard=("zh", "fr"))
    "fr": ["bonjour", "le", "monde", "ceci", "est", "un", "essai"],
}


def sensevoice_reply(
    wav_name: str,
    bursts: Iterable[tuple[int, int]],
    svs_lang: str,
    svs_itn: bool,
    heard: str | Sequence[str] = "zh",
) -> dict[str, Any]:
    """The C++ offline server's reply when it runs SenseVoice: no ``timestamp`` and no ``stamp_sents`` (the CTC
    search gives none: ``websocket-server.cpp`` lines 100-115 add them only when not empty), and per speech
    segment ``<|lang|><|emotion|><|event|> text`` (``sensevoice-small.cpp`` lines 327-354: the language, emotion
    and event tags, a space, the words — a ``▁`` word gets its own leading space — and 。 or . with ITN) joined
    with nothing between (``funasrruntime.cpp`` line 296). ``auto`` is answered in the language ``heard`` (one for
    every burst, or burst i in ``heard[i % len(heard)]``); ``"nospeech"`` is a segment SenseVoice hears no speech
    in (its tags, ``<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|>``, and no words)."""
    spoken = [heard] if isinstance(heard, str) else list(heard)
    parts = []
    counter = 0
    for i, (start, end) in enumerate(bursts):
        lang = svs_lang if svs_lang in SENSEVOICE_WORDS else spoken[i % len(spoken)]
        if lang == "nospeech":
            parts.append("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|> ")
            continue
        words = SENSEVOICE_WORDS[lang]
        spaced = lang in ("en", "ko", "fr")
        n = max(1, (end - start) // TOKEN_MS)
        said = [words[(counter + k) % len(words)] for k in range(n)]
        counter += n
        text = "".join(" " + w for w in said) if spaced else "".join(said)  # "▁hello" -> " hello"
        if svs_itn:
            text += "。" if lang == "zh" else "."
        emotion, event = ("<|HAPPY|>", "<|BGM|>") if i % 2 else ("<|NEUTRAL|>", "<|Speech|>")
        parts.append(f"<|{lang}|>{emotion}{event} {text}")
    return {"is_final": False, "mode": "offline", "text": "".join(parts), "wav_name": wav_name}


def dump_reply(reply: dict[str, Any]) -> str:
    """Serialise like nlohmann::json: keys sorted, compact, UTF-8 kept."""
    return json.dumps(reply, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def ffmpeg_peaks(path: Path, frame_ms: int = FRAME_MS) -> list[int] | None:
    """Decode a file to 16 kHz mono s16le with real ffmpeg and meter it; None when ffmpeg decoded nothing."""
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(path)]
    argv += ["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"]
    meter = PeakMeter(16000, frame_ms)
    got = 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        err_reader = threading.Thread(target=proc.stderr.read, daemon=True)
        err_reader.start()
        while chunk := proc.stdout.read(1 << 16):
            got += len(chunk)
            meter.feed(chunk)
        proc.wait()
        err_reader.join()
    if proc.returncode != 0 and got == 0:
        log.info("test server: ffmpeg could not decode %s (exit %s)", path, proc.returncode)
        return None
    return meter.finish()


#: Replies a hostile server sends instead of the right one (``FunasrTestServer.fault``); see :func:`spoiled_reply`.
Spoil = Literal[
    "other_file", "huge_times", "negative_times", "repeat_times", "many_tokens", "deep_json", "inf_time", "empty"
]
SPOILS: tuple[str, ...] = get_args(Spoil)
#: The file whose reply ``other_file`` sends: 60 s, speech at 0.5 s and at 40 s.
OTHER_FILE = ("other-file", [(500, 2500), (40_000, 43_000)])


def _moved(segments: list[Segment], change: Any) -> list[Segment]:
    return [Segment(s.tokens, tuple(change(i, t) for i, t in enumerate(s.times)), s.punc) for s in segments]


def _crowded(segments: list[Segment]) -> list[Segment]:
    """Ten tokens in the time of each one (50 a second)."""
    out = []
    for s in segments:
        tokens = tuple(tok for tok in s.tokens for _ in range(10))
        times = tuple((a + k * (b - a) // 10, a + (k + 1) * (b - a) // 10) for a, b in s.times for k in range(10))
        out.append(Segment(tokens, times, s.punc))
    return out


def spoiled_reply(spoil: Spoil, wav_name: str, segments: list[Segment]) -> str:
    """The reply text a hostile server sends for a file whose right reply holds ``segments``."""
    if spoil == "other_file":
        name, bursts = OTHER_FILE
        return dump_reply(build_reply(name, sentences_for(bursts)))
    if spoil == "empty":
        return dump_reply(build_reply(wav_name, []))
    if spoil == "deep_json":
        return '{"mode":"offline","text":' + "[" * 100_000 + "]" * 100_000 + "}"
    if spoil == "huge_times":
        segments = _moved(segments, lambda i, t: (t[0] + 10**12, t[1] + 10**12))
    elif spoil == "negative_times":
        segments = _moved(segments, lambda i, t: (t[0] - 100_000, t[1] - 100_000))
    elif spoil == "repeat_times":
        segments = [Segment(s.tokens, (s.times[0],) * len(s.times), s.punc) for s in segments]
    elif spoil == "many_tokens":
        segments = _crowded(segments)
    reply = build_reply(wav_name, segments)
    if spoil == "inf_time" and segments:
        reply["stamp_sents"][0]["ts_list"][0][0] = "INF"
        return dump_reply(reply).replace('"INF"', "1e400", 1)
    return dump_reply(reply)
