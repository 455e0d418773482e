"""Skip rules for libraries with many languages (pure): is a file worth sending to a model that speaks one language?

Three rules, each on by default and switchable (``skip`` setting, ``--skip``):

- ``audio-language``: every audio stream is tagged with a language the model does not speak (``jpn``, ``eng`` ...).
  Untagged (``und``) audio is never skipped: nothing says it is not the model's language. When several streams are
  tagged, :func:`preferred_track` picks the model's (``chi``/``zho``/``cmn`` for a Chinese model).
- ``embedded-subtitles``: the file already carries a subtitle stream tagged with the target language.
- ``external-subtitles``: a subtitle file next to it is named for the target language in one of the usual ways
  (``.chs.srt``, ``.zh-Hans.srt``, ``.zh_CN.srt``, ``.chi.ass``, ``.sc.srt``, ``.简体.srt`` ...), other than the
  ones we write.

A tag is read in the forms real files carry (:func:`languages`): ISO 639-1, 639-2/B and /T (``zh``, ``chi``,
``zho``), BCP-47 with script and region, with ``_`` for ``-`` (``zh-Hans-CN``, ``zh_CN``), names (``Chinese
(Simplified)``) and lists (``chi;eng``, ``chs&eng``): a tag names every language any of its parts names.

Forced (signs and songs only), SDH and commentary subtitles follow their own rule: a kind in ``ignored`` never
counts as "subtitles exist" (an embedded stream by its disposition or title, a file by a ``.forced``/``.sdh``/
``.hi``/``.cc``/``.commentary`` tag). ``also`` names other languages whose subtitles make a file skipped too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

from funasr_subs.media.info import AudioStream, MediaInfo

RULES = ("audio-language", "embedded-subtitles", "external-subtitles")
SUBTITLE_SUFFIXES = frozenset({".srt", ".ass", ".ssa", ".vtt", ".sub", ".sup", ".idx", ".smi", ".lrc"})
#: Tags that say nothing about the language.
UNKNOWN = frozenset({"", "und", "unk", "mis", "mul", "zxx", "qaa"})
#: Every name a language goes by in stream tags and subtitle file names, by the model's code.
NAMES: dict[str, frozenset[str]] = {
    "zh": frozenset(
        {
            "zh",
            "zho",
            "chi",
            "cmn",
            "chinese",
            "mandarin",
            "zh-cn",
            "zh-hans",
            "zh-sg",
            "zh-tw",
            "zh-hant",
            "zh-hk",
            "chs",
            "cht",
            "sc",
            "tc",
            "gb",
            "big5",
            "简体",
            "繁体",
            "繁體",
            "中文",
            "简中",
            "繁中",
            "chs&eng",
            "cht&eng",
        }
    ),
    "yue": frozenset({"yue", "cantonese", "zh-yue", "粤语", "粵語"}),
    "en": frozenset({"en", "eng", "english", "en-us", "en-gb"}),
    "ja": frozenset({"ja", "jpn", "jp", "japanese", "日本語"}),
    "ko": frozenset({"ko", "kor", "korean", "한국어"}),
    "de": frozenset({"de", "deu", "ger", "german"}),
    "fr": frozenset({"fr", "fra", "fre", "french"}),
    "es": frozenset({"es", "spa", "spanish"}),
    "ru": frozenset({"ru", "rus", "russian"}),
}


#: Every tag NAMES lists, and the tags that name no language: these need no look-up in langcodes.
_KNOWN = UNKNOWN.union(*NAMES.values())
#: What separates the parts of one tag: ``chi;eng``, ``chs&eng``, ``zh, en``, ``Chinese (Simplified)``.
_PARTS = re.compile(r"[\s;,/|&+()\[\]]+")
#: File-name tags of a subtitle's kind (as Jellyfin, Plex and Kodi read them).
KIND_TAGS = {
    "forced": "forced",
    "foreign": "forced",
    "sdh": "sdh",
    "hi": "sdh",
    "cc": "sdh",
    "commentary": "commentary",
}


@dataclass(frozen=True)
class Skip:
    """Why a file is not worth transcribing: the rule and one line for the log and ``status``."""

    rule: str
    reason: str


def _iso639_1(word: str) -> str | None:
    """``chi``/``zho``/``zh-Hans-CN`` → ``zh``, ``vie`` → ``vi`` (langcodes); None when it is no language tag.
    Imported here, when a tag holds a code :data:`NAMES` does not list: its tables take ~0.08 s to load."""
    import langcodes

    try:
        return langcodes.Language.get(word).language
    except ValueError:  # langcodes.LanguageTagError: not a language tag
        return None


@lru_cache(maxsize=4096)
def languages(tag: str) -> frozenset[str]:
    """Every form of the languages a tag names, to look up in :data:`NAMES`: the whole tag and each of its parts
    lower-case, each part's language subtag (``zh_cn`` → ``zh``) and, for a part NAMES does not list, its ISO 639-1
    code (``vie`` → ``vi``)."""
    tag = tag.lower()
    out = {tag}
    for part in _PARTS.split(tag):
        if part:
            subtag = part.replace("_", "-")
            primary = subtag.split("-")[0]
            out |= {part, primary}
            if part not in _KNOWN and primary not in _KNOWN:
                out.add(_iso639_1(subtag) or part)
    return frozenset(out)


def _code(tag: str) -> str:
    """A language tag as the key of :data:`NAMES` that lists it (``zh_CN``, ``chi``, ``cmn`` → ``zh``), else its
    ISO 639-1 code (``vie`` → ``vi``), else the tag itself (lower-case)."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    for code, names in NAMES.items():
        if primary in names:
            return code
    return (_iso639_1(primary) or primary) if primary else ""


def model_code(lang: str | None, profile: str) -> str:
    """The model's language: ``lang`` (``zh-CN``, ``chi``, ``cmn`` → ``zh``; ``vie`` → ``vi``), else the cue
    profile's; a key of :data:`NAMES` when one lists it."""
    return _code(lang or profile) or "zh"


def names_of(code: str) -> frozenset[str]:
    found = NAMES.get(code)
    return found if found is not None else languages(code)


#: The languages a SenseVoice server left to guess (``--language auto``) speaks.
AUTO_LANGUAGES = ("zh", "yue", "en", "ja", "ko")
#: Audio tags a model also speaks: Cantonese films' audio is often tagged Chinese (``chi``, ``zho``).
AUDIO_ALSO = {"yue": ("zh",), "auto": AUTO_LANGUAGES}


def _speaks(code: str, tag: str) -> bool:
    return not names_of(code).isdisjoint(languages(tag))


def _hears(code: str, tag: str) -> bool:
    """Whether audio tagged ``tag`` is speech the model (``code``, or ``auto``) transcribes."""
    return _speaks(code, tag) or any(_speaks(other, tag) for other in AUDIO_ALSO.get(code, ()))


def preferred_track(info: MediaInfo, code: str) -> str | None:
    """With several audio streams, the position of the first one tagged with the model's language (as
    ``--audio-track`` takes it), when ffmpeg's own pick would be another; None when there is nothing to choose."""
    if len(info.audio) < 2:
        return None
    default = max(info.audio, key=lambda a: (a.default, a.channels, -a.position))
    if _hears(code, default.language):
        return None
    for stream in info.audio:
        if _hears(code, stream.language):
            return str(stream.position)
    return None


def audio_rule(streams: Iterable[AudioStream], code: str) -> Skip | None:
    tags = [s.language.lower() for s in streams]
    if not tags or any(tag in UNKNOWN for tag in tags) or any(_hears(code, tag) for tag in tags):
        return None
    return Skip(
        "audio-language",
        f"audio is {', '.join(tags)}, not a language the model speaks ({code}): set skip without audio-language, "
        "or --audio-track, to transcribe it anyway",
    )


def language_code(name: str) -> str:
    """The code ``name`` goes by in NAMES (``eng`` → ``en``, ``zh_TW`` → ``zh``); else its ISO 639-1 code or the
    name itself."""
    return _code(name)


def _blocks(tag: str, code: str, also: Collection[str]) -> bool:
    return _speaks(code, tag) or any(_speaks(language_code(other), tag) for other in also)


def embedded_rule(
    subtitle_languages: Iterable[str],
    code: str,
    kinds: Iterable[frozenset[str]] = (),
    *,
    ignored: Collection[str] = (),
    also: Collection[str] = (),
) -> Skip | None:
    """A subtitle stream in the target language (or one of ``also``) whose kinds are none of ``ignored``."""
    kind_list = list(kinds)
    for i, tag in enumerate(subtitle_languages):
        stream_kinds = kind_list[i] if i < len(kind_list) else frozenset()
        if _blocks(tag, code, also) and not stream_kinds & set(ignored):
            return Skip("embedded-subtitles", f"it already has an embedded {tag} subtitle stream")
    return None


def external_rule(
    stem: str,
    siblings: Iterable[str],
    code: str,
    ours: Collection[str],
    *,
    ignored: Collection[str] = (),
    also: Collection[str] = (),
) -> Skip | None:
    """A sibling ``<stem>.<tags>.<subtitle suffix>`` with a tag naming the target language (or one of ``also``),
    not written by us, and no tag naming an ``ignored`` kind (``x.zh.forced.srt``)."""
    prefix = stem + "."
    for name in sorted(siblings):
        if name in ours or not name.startswith(prefix):
            continue
        middle, dot, suffix = name[len(prefix) :].rpartition(".")
        if not dot or "." + suffix.lower() not in SUBTITLE_SUFFIXES:
            continue
        tags = middle.split(".")
        if any(KIND_TAGS.get(tag.lower()) in ignored for tag in tags):
            continue
        if any(_blocks(tag, code, also) for tag in tags):
            return Skip("external-subtitles", f"{name} next to it is already a subtitle in that language")
    return None


def first_skip(
    info: MediaInfo,
    *,
    code: str,
    rules: Collection[str],
    audio_track: str | None,
    siblings: Iterable[str],
    ours: Collection[str],
    ignored: Collection[str] = (),
    also: Collection[str] = (),
    audio_code: str | None = None,
) -> Skip | None:
    """The first rule (in ``RULES`` order) that says the file is not worth sending, or None. ``ignored``: subtitle
    kinds that do not count; ``also``: other languages whose subtitles count; ``audio_code``: the model's language
    for the audio rule when it is not ``code`` (``auto``: any SenseVoice speaks)."""
    if "audio-language" in rules and audio_track is None:
        found = audio_rule(info.audio, audio_code or code)
        if found:
            return found
    if "embedded-subtitles" in rules:
        found = embedded_rule(info.subtitles, code, info.subtitle_kinds, ignored=ignored, also=also)
        if found:
            return found
    if "external-subtitles" in rules:
        return external_rule(info.path.stem, siblings, code, ours, ignored=ignored, also=also)
    return None
