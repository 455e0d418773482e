"""The spoken language read from a raw SenseVoice reply (pure): what ``/detect-language`` answers.

Two shapes carry it:

- the C++ websocket server running SenseVoice puts ``<|zh|>``, ``<|yue|>``, ``<|en|>``, ``<|ja|>`` or ``<|ko|>``
  (``<|nospeech|>`` where its VAD found a segment without speech) before each speech segment's text
  (``sensevoice-small.cpp`` line 354; protocol.SENSEVOICE_TAG). Each language weighs as much text as follows its
  tags: the share of the words (tokens, as FunASR counts them: a Chinese character, a Latin word) is the confidence;
- funasr-server strips every tag and names one language in its answer's ``language`` field: the first tag of
  SenseVoice's raw text, i.e. the language of the first speech segment its VAD found (``funasr/bin/_server_app.py``,
  snapshot 2026-08-21: SenseVoice behind ``fsmn-vad``, lines 249-253; the first tag read by
  ``extract_language_from_asr_text``, lines 34-42, at line 420, kept at line 450, answered at line 206 through
  ``resolve_transcription_language``, lines 45-53, which says ``"unknown"`` when there was no tag and echoes a
  language that was asked for: so it is asked ``auto``). httpapi.reply_from_answer keeps that field as
  ``language``; with words heard, its confidence is 1 (the server tells no share).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from funasr_subs.protocol import SENSEVOICE_TAG, split_tokens

#: The languages SenseVoice tells (its ``<|...|>`` language tags; funasr_subs.protocol.SVS_LANGS without "auto").
LANGUAGES = ("zh", "yue", "en", "ja", "ko")
#: A speech segment's first tag: one of those, ``nospeech``, or a language we do not know (``<|fr|>`` from another
#: model): its words count for none of ours (they once counted for the language tagged before them).
_LANGUAGE_TAG = re.compile(r"<\|([a-z]{2,3}|nospeech)\|>")


@dataclass(frozen=True)
class Spoken:
    """The language heard, and the share of the words heard in it (0-1)."""

    code: str
    confidence: float
    words: int  # tokens heard in all languages


def _weights(text: str) -> dict[str, int]:
    """Tokens after each language tag, per language (a ``<|nospeech|>`` segment counts for none; a language not in
    :data:`LANGUAGES` is kept, to be part of the total, never the answer)."""
    weights: dict[str, int] = {}
    marks = list(_LANGUAGE_TAG.finditer(text))
    for i, mark in enumerate(marks):
        code = mark.group(1)
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        said = len(split_tokens(SENSEVOICE_TAG.sub(" ", text[mark.end() : end])))
        if code != "nospeech" and said:
            weights[code] = weights.get(code, 0) + said
    return weights


def spoken_language(reply: Mapping[str, Any]) -> Spoken | None:
    """The language of ``reply`` (a reply in the C++ server's shape, its text untouched): the one most words follow
    the tags of; else funasr-server's ``language`` field when words came with it; None when no speech was heard in
    a language SenseVoice tells (no words, only ``<|nospeech|>``, or a model that tags nothing, as Paraformer)."""
    text = reply.get("text")
    text = text if isinstance(text, str) else ""
    weights = _weights(text)
    ours = {code: said for code, said in weights.items() if code in LANGUAGES}
    if ours:
        total = sum(weights.values())
        code = max(ours, key=lambda c: ours[c])  # (a tie: the language heard first)
        return Spoken(code, ours[code] / total, total)
    named = reply.get("language")
    words = len(split_tokens(SENSEVOICE_TAG.sub(" ", text)))
    if isinstance(named, str) and named in LANGUAGES and words:
        return Spoken(named, 1.0, words)
    return None
