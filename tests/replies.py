"""Reading the real FunASR replies in tests/data/funasr-responses, the truncated server-log ones included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPLIES = Path(__file__).parent / "data" / "funasr-responses"


def read_reply(path: Path) -> dict[str, Any]:
    """One reply as the client received it. Files 13-15 are server-log lines cut at ~30,000 bytes (SOURCES.md):
    their ``stamp_sents`` are read object by object up to the first incomplete one, and ``text`` and
    ``timestamp`` rebuilt from those, so the reply is exactly the complete part."""
    raw = path.read_text(encoding="utf-8")
    try:
        reply: dict[str, Any] = json.loads(raw)
        return reply
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    pos = raw.index('"stamp_sents":[') + len('"stamp_sents":[')
    sents: list[dict[str, Any]] = []
    while True:
        while raw[pos : pos + 1] in (",", " "):
            pos += 1
        try:
            obj, pos = decoder.raw_decode(raw, pos)
        except json.JSONDecodeError:
            break
        sents.append(obj)
    pairs = [pair for s in sents for pair in s["ts_list"]]
    text = "".join(s["text_seg"].replace(" ", "") + s["punc"] for s in sents)
    return {
        "is_final": False,
        "mode": "offline",
        "stamp_sents": sents,
        "text": text,
        "timestamp": json.dumps(pairs),
        "wav_name": path.stem,
    }


#: The long real replies of a whole talk, news report and mixed Chinese/English video (issue #9's material).
LONG_REPLIES = sorted(p.name for p in REPLIES.glob("1[1-5]_*.json"))
