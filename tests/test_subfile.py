"""funasr_subs/subfile on generated files: whatever a subtitle holds, re-timing it changes its times or nothing."""

from __future__ import annotations

import re

from hypothesis import event, given, settings
from hypothesis import strategies as st

from funasr_subs.subfile import StructureError, parse, retimed_bytes

#: Cue text with what breaks naive line handling: form feeds, NEL, Unicode line separators, CR, arrows and stamps.
ODD = st.sampled_from(["\x0c", "\x85", "\u2028", "\r", "-->", "00:00:01,000", "NOTE", "cue-6", "1", " ", "\t"])
TEXT = st.lists(
    st.one_of(st.text(alphabet="我們今天去山裡看看abc", min_size=1, max_size=6), ODD), min_size=1, max_size=5
)
STAMP = re.compile(r"\d+:\d\d(:\d\d)?[.,]\d+")


def _stamp(ms: int, sep: str) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def _file(fmt: str, texts: list[str], newline: str) -> str:
    sep = "." if fmt == "vtt" else ","
    head = f"WEBVTT{newline}{newline}NOTE kept{newline}{newline}" if fmt == "vtt" else ""
    blocks = [
        f"{k + 1}{newline}{_stamp(1000 * k, sep)} --> {_stamp(1000 * k + 800, sep)}{newline}{t}{newline}"
        for k, t in enumerate(texts)
    ]
    return head + newline.join(blocks)


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from(["srt", "vtt"]),
    cues=st.lists(TEXT.map("".join), min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n"]),
    codec=st.sampled_from(["utf_8", "utf_16_le", "big5", "gb18030"]),
    shift=st.integers(-500, 3_600_000),
)
def test_only_times_change_or_nothing_is_written(
    fmt: str, cues: list[str], newline: str, codec: str, shift: int
) -> None:
    original = _file(fmt, cues, newline)
    data = (b"\xff\xfe" if codec == "utf_16_le" else b"") + original.encode(codec, "ignore")
    try:
        found = parse(data, f".{fmt}")
    except ValueError:
        event("unreadable")
        return  # refused as unreadable: nothing written
    visible = [e for e in found.subs.events if not e.is_comment]
    times = [(max(e.start + shift, 0), max(e.end + shift, 0)) for e in visible]
    try:
        out = retimed_bytes(found, times, fmt)
    except StructureError:
        event("refused")
        return  # refused: nothing written
    # written back the way it came (a file of a cue or two may be read in the wrong legacy encoding: its bytes are
    # still the same), with nothing but the times changed
    assert out.startswith(found.encoding.bom)
    text = out[len(found.encoding.bom) :].decode(found.encoding.codec)
    assert STAMP.sub("T", text) == STAMP.sub("T", found.text)
    assert found.encoding.encode(found.text) == data
