"""Settings in one typed place: TOML file, then ``FUNASR_SUBS_*`` environment, then flags (flags win)."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_type_hints

# the Literal types at run time too: typing.get_type_hints(Settings) must resolve them (CueSettings stays lazy)
from funasr_subs.cues.script import Script
from funasr_subs.cues.settings import LatinSpacing, Layout, Profile, PunctuationStyle
from funasr_subs.errors import ConfigError
from funasr_subs.hotwords import check_weight, parse_weight
from funasr_subs.names import echo
from funasr_subs.recognition.endpoint import parse_endpoint
from funasr_subs.safeio import read_regular_bytes

if TYPE_CHECKING:
    from funasr_subs.cues.settings import CueSettings

log = logging.getLogger(__name__)

SendMode = Literal["pcm", "mp4"]
#: The spoken language, as SenseVoice on the C++ server takes it (``svs_lang``: funasr_subs.protocol.SVS_LANGS).
Language = Literal["auto", "zh", "yue", "en", "ja", "ko"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
#: The cue profile (and file tag) a language brings with it; zh and auto keep the zh profile and the script's tag.
LANGUAGE_PROFILES: dict[str, Profile] = {"yue": "yue", "en": "en", "ja": "ja", "ko": "ko"}
#: Every number setting's range: (lowest, highest, lowest allowed itself). Checked where the value comes in, so the
#: one-line error names the flag, variable, file or sidecar it came from; NaN and infinity are never accepted.
RANGES: dict[str, tuple[float, float, bool]] = {
    "connect_timeout": (0, 86_400, False),
    "reply_timeout": (0, 86_400, True),
    "reply_timeout_ratio": (0, 100, True),
    "retries": (0, 100, True),
    "retry_backoff": (0, 3600, True),
    "jobs": (1, 256, True),
    "split_minutes": (0, 10_000, True),  # 0: never split
    "max_width": (0, 1000, False),
    "max_lines": (1, 20, True),
    "min_duration": (0, 600_000, True),
    "max_duration": (1, 3_600_000, True),
    "min_gap": (0, 60_000, True),
    "max_cps": (0, 1000, True),  # 0: the reading-speed rule off (docs/configuration.md)
    "pause": (0, 600_000, True),
    "linger": (0, 600_000, True),
    # no video runs slower than 10 frames a second; frames of seconds pushed every cue further from its speech (a gap
    # and a cue take two frames at least: at --fps 0.5 a 270 s film's last cue came at 6:46, at 0.001 at 56 h)
    "fps": (10, 1000, True),
}
SUBTITLE_FORMATS = ("srt", "ass", "vtt", "lrc", "ass-karaoke")
#: The file suffix of each format that is not its own name (``ass-karaoke`` is an ``.ass`` file with ``\k`` tags).
FORMAT_SUFFIXES = {"ass-karaoke": "ass"}
SKIP_RULES = ("audio-language", "embedded-subtitles", "external-subtitles")
#: Subtitle kinds that may be left out of "subtitles exist" (funasr_subs.skiprules.SUBTITLE_KINDS).
SUBTITLE_KINDS = ("forced", "sdh", "commentary")
#: What a cue layout sets (the keys of funasr_subs.cues.settings.LAYOUTS; not imported here: config loads first).
LAYOUT_KEYS = ("max_lines", "punctuation", "verbatim")
ENV_PREFIX = "FUNASR_SUBS_"
MAX_CONFIG_BYTES = 1024 * 1024


def format_suffix(fmt: str) -> str:
    """The file suffix (without the dot) a subtitle format is written with: ``ass-karaoke`` -> ``ass``."""
    return FORMAT_SUFFIXES.get(fmt, fmt)


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/funasr-subs/config.toml`` (``~/.config/...`` when unset; ``%APPDATA%`` on Windows)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.environ.get("APPDATA") or str(Path.home() / ".config")
    return Path(base) / "funasr-subs" / "config.toml"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/funasr-subs`` (``~/.local/state/...`` when unset; ``%LOCALAPPDATA%`` on Windows)."""
    base = os.environ.get("XDG_STATE_HOME") or os.environ.get("LOCALAPPDATA") or str(Path.home() / ".local" / "state")
    return Path(base) / "funasr-subs"


@dataclass(frozen=True)
class Settings:
    """Everything one transcription job needs. Keys are the config file's keys (and ``--flag-names``)."""

    # server(s)
    server: str = "ws://127.0.0.1:10095"  # one server (``servers``, when given, wins)
    servers: tuple[str, ...] = ()  # a pool: each ws://host:port, optionally #slots=N
    split_minutes: float | None = None  # cut long files at silences near N minutes; None: 10 for a pool, else off
    insecure: bool = False
    ca_file: Path | None = None
    connect_timeout: float = 10.0  # seconds to open the websocket
    reply_timeout: float = 120.0  # seconds for the reply after the upload (and per frame sent), plus ...
    reply_timeout_ratio: float = 0.5  # ... times the audio duration (the server decodes slower than the upload)
    retries: int = 3  # extra attempts after a connection failure
    retry_backoff: float = 1.0  # first wait in seconds, doubled each attempt
    # request
    send: SendMode = "pcm"
    hotwords_file: Path | None = None
    hotwords: Mapping[str, int] = field(default_factory=dict)
    itn: bool = True
    speech_activity: bool = True  # listen to the audio (the PCM sent, or decoded beside an mp4): speech intervals
    resend_lost: bool = True  # speech the reply has no words for (recognition/lost.py) is sent again on its own
    #: SenseVoice's language (None: not sent, the server's own "auto"); yue/en/ja/ko also choose the profile
    #: (when it is zh, the default), the file tag and the skip rules' language; yue writes Traditional Chinese.
    language: Language | None = None
    audio_track: str | None = None  # index among audio streams ("0", "1") or a language tag ("jpn")
    # skip rules (funasr_subs.skiprules): watch, hook and webhooks skip; transcribe warns and does the file
    skip: tuple[str, ...] = ("audio-language", "embedded-subtitles", "external-subtitles")
    ignore_subtitle_kinds: tuple[str, ...] = ("forced", "commentary")  # never count as "subtitles exist"
    skip_subtitle_languages: tuple[str, ...] = ()  # other languages whose subtitles also make a file skipped
    # output
    formats: tuple[str, ...] = ("srt",)
    lang: str | None = None  # the tag in file names; None: from the script (zh, zh-Hant, zh-TW, zh-HK)
    output_dir: Path | None = None
    overwrite: bool = False
    jobs: int = 1
    # cues (None = the profile's default)
    profile: Profile = "zh"
    layout: Layout | None = None  # zh: one-line (default), two-line, asr (the form before: see cues.settings.LAYOUTS)
    max_width: float | None = None
    max_lines: int | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    min_gap: int | None = None
    max_cps: float | None = None
    pause: int | None = None
    linger: int | None = None
    fps: float | None = None
    punctuation: PunctuationStyle | None = None
    verbatim: bool | None = None  # keep fillers (呃, 嗯 ...) in the display text
    # Chinese text
    script: Script = "hans"  # hans (as FunASR writes), hant, tw, hk: OpenCC conversion of the display text
    latin_spacing: LatinSpacing = "space"  # between Chinese and English words: space or none
    words_file: Path | None = None  # one word a line: never split, spelled as written (plus every hotword)
    words: tuple[str, ...] = ()
    # after every job (done, failed, skipped): POST a JSON summary here (funasr_subs.actions.webhook)
    on_done: str | None = None

    def __post_init__(self) -> None:
        if self.language in LANGUAGE_PROFILES and self.profile == "zh":  # zh is the default: the language decides
            object.__setattr__(self, "profile", LANGUAGE_PROFILES[self.language])
        if self.profile == "yue" and self.script == "hans":  # Cantonese is written in Traditional characters
            object.__setattr__(self, "script", "hant")
        for fmt in self.formats:
            if fmt not in SUBTITLE_FORMATS:
                raise ConfigError(f"unknown subtitle format {fmt!r}: use one or more of {', '.join(SUBTITLE_FORMATS)}")
        unknown = [rule for rule in self.skip if rule not in SKIP_RULES]
        if unknown:
            raise ConfigError(f"unknown skip rule {unknown[0]!r}: use {', '.join(SKIP_RULES)} (or none)")
        odd = [kind for kind in self.ignore_subtitle_kinds if kind not in SUBTITLE_KINDS]
        if odd:
            raise ConfigError(
                f"unknown subtitle kind {odd[0]!r} in ignore_subtitle_kinds: use {', '.join(SUBTITLE_KINDS)}"
            )
        if not self.formats:
            raise ConfigError("no subtitle format given: use --format srt (or ass, vtt)")
        for url in self.server_list:
            parse_endpoint(url)  # ConfigError naming the URL
        for f in fields(self):  # values given directly (the Python API); the loaders below name their source
            check_setting(f.name, getattr(self, f.name), f"setting {f.name}")
        if self.reply_timeout == 0 and self.reply_timeout_ratio == 0:
            raise ConfigError("reply-timeout and reply-timeout-ratio are both 0: no reply could ever arrive in time")
        for word, weight in self.hotwords.items():
            check_weight(word, weight, "hotwords")

    @property
    def server_list(self) -> tuple[str, ...]:
        """Every server to use: ``servers`` when given, else the one ``server``."""
        return tuple(self.servers) if self.servers else (self.server,)

    @property
    def output_lang(self) -> str:
        """The language tag of the subtitle files: ``lang`` when given, else the language's (``yue``, ``ja``, ``ko``,
        ``en``), else the script's (``zh``, ``zh-Hant`` ...)."""
        from funasr_subs.cues.script import LANG_TAG

        if self.lang is not None:
            return self.lang
        if self.language in LANGUAGE_PROFILES:
            return self.language
        return LANG_TAG[self.script]

    def cue_settings(self) -> CueSettings:
        from funasr_subs.cues.lexicon import normalise_words
        from funasr_subs.cues.settings import CueSettings

        return CueSettings.for_profile(
            self.profile,
            self.layout,
            max_width=self.max_width,
            max_lines=self.max_lines,
            min_duration=self.min_duration,
            max_duration=self.max_duration,
            min_gap=self.min_gap,
            max_cps=self.max_cps,
            pause=self.pause,
            linger=self.linger,
            fps=self.fps,
            punctuation=self.punctuation,
            verbatim=self.verbatim,
            script=self.script,
            latin_spacing=self.latin_spacing,
            words=normalise_words([*self.hotwords, *self.words]),
        )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-friendly dict (paths as strings, tuples as lists, None left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out


_HINTS: dict[str, Any] | None = None


def _hints() -> dict[str, Any]:
    global _HINTS
    if _HINTS is None:
        names = {
            "Profile": Profile,
            "PunctuationStyle": PunctuationStyle,
            "Script": Script,
            "LatinSpacing": LatinSpacing,
            "Language": Language,
        }
        _HINTS = get_type_hints(Settings, localns=names)
    return _HINTS


_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|nan)", re.ASCII | re.I)


def whole_number(value: Any) -> int:
    """An integer from TOML or text: ASCII digits only (not ``1_0`` or ``٢٠``), a float only when whole and finite."""
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("expected a whole number")
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value)
    raise ValueError("expected a whole number written in digits 0-9")


def real_number(value: Any) -> float:
    """A number from TOML or text (ASCII digits, a dot, an exponent; inf/nan parse here and fail the range check)."""
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)
    raise ValueError("expected a number written in digits 0-9")


def range_problem(low: float, high: float, inclusive: bool, value: float) -> str | None:
    """Why ``value`` is outside ``low``-``high`` (``low`` itself allowed when ``inclusive``), or None."""
    if not math.isfinite(value):
        return "not a finite number"
    if value < low or (value == low and not inclusive) or value > high:
        lowest = f"at least {low:g}" if inclusive else f"more than {low:g}"
        return f"out of range: use a number {lowest} and at most {high:g}"
    return None


def check_setting(key: str, value: Any, source: str) -> None:
    """ConfigError naming ``source`` when a number is out of range or the language tag is unusable."""
    if value is None:
        return
    if key in RANGES and isinstance(value, int | float) and not isinstance(value, bool):
        problem = range_problem(*RANGES[key], value)
        if problem:
            raise ConfigError(f"{source}: {key.replace('_', '-')} = {value!r} is {problem}")
    if key == "formats" and isinstance(value, tuple | list):
        bad = [f for f in value if f not in SUBTITLE_FORMATS]
        if bad or not value:
            raise ConfigError(
                f"{source}: unknown subtitle format in {list(value)!r}: "
                f"use one or more of {', '.join(SUBTITLE_FORMATS)}"
            )
        twice = [f for f in value if f != format_suffix(f) and format_suffix(f) in value]
        if twice:
            raise ConfigError(
                f"{source}: formats {format_suffix(twice[0])} and {twice[0]} both write .{format_suffix(twice[0])} "
                "files: choose one"
            )
    if key == "on_done" and isinstance(value, str):
        check_webhook_url(value, source)
    if key == "lang" and isinstance(value, str):
        if any(not ch.isprintable() or ch.isspace() for ch in value) or "/" in value or "\\" in value:
            raise ConfigError(f"{source}: lang {echo(value)} is not a language code (e.g. zh, zh-CN, or '' for none)")
        if value.startswith(".") or len(value) > 35:
            raise ConfigError(f"{source}: lang {echo(value)} is not a language code (e.g. zh, zh-CN, or '' for none)")


def check_webhook_url(url: str, source: str) -> None:
    """ConfigError naming ``source`` unless ``url`` is an http(s) URL with a host and no spaces or control
    characters (the URL itself is not repeated: it may hold a secret)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port out of range, a broken [IPv6] address
        usable = False
    if not usable or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigError(
            f"{source}: on-done must be an http:// or https:// URL with a host (e.g. http://ntfy:80/subs)"
        )


#: Settings whose flag is not the key spelled with dashes.
_FLAGS = {"formats": "--format", "servers": "--server", "hotwords_file": "--hotwords", "words_file": "--words"}


def flag_name(key: str) -> str:
    return _FLAGS.get(key, "--" + key.replace("_", "-"))


def _coerce(key: str, value: Any, source: str) -> Any:
    value = _convert(key, value, source)
    check_setting(key, value, source)
    return value


def _convert(key: str, value: Any, source: str) -> Any:
    """Convert a raw value (TOML value or environment string) to the field's type, or raise ConfigError."""
    hint = _hints()[key]
    args = get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args and optional else hint
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("", "none"))) and key != "lang":
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if base is int:
            return whole_number(value)
        if base is float:
            return real_number(value)
        if base is Path:
            return Path(str(value)).expanduser()
        if key == "words":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if key == "formats":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip().lower().lstrip(".") for i in items if str(i).strip())
        if key in ("skip", "ignore_subtitle_kinds", "skip_subtitle_languages"):
            items = value.split(",") if isinstance(value, str) else list(value)
            rules = tuple(str(i).strip().lower() for i in items if str(i).strip())
            return () if rules in (("none",), ("off",)) else rules
        if key == "hotwords":
            return parse_hotword_items(value, source)
        if key == "servers":
            items = value.split(",") if isinstance(value, str) else list(value)
            if not all(isinstance(i, str) for i in items):
                raise ValueError("expected a list of ws:// URLs")
            return tuple(i.strip() for i in items if i.strip())
        if get_args(base):  # Literal
            allowed = get_args(base)
            if value not in allowed:
                raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
            return value
        if base is str:
            return str(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{source}: bad value for {key!r}: {echo(value)} ({str(exc)[:200]})") from None
    return value


def parse_hotword_items(value: Any, source: str) -> dict[str, int]:
    """Hotwords given as a mapping, a list of ``WORD=WEIGHT`` strings, or one comma-separated string."""
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        parts = value.split(",") if isinstance(value, str) else list(value)
        items = []
        for part in parts:
            part = str(part).strip()
            if not part:
                continue
            word, sep, weight = part.rpartition("=")
            if not sep or not word.strip():
                raise ConfigError(f"{source}: hotword {echo(part)} must look like WORD=WEIGHT (e.g. 达摩院=20)")
            items.append((word.strip(), weight.strip()))
    return {word: parse_weight(word, weight, source) for word, weight in items}


def settings_from_mapping(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Validate and coerce a mapping of config keys (dashes or underscores) to Settings keyword arguments."""
    known = {f.name for f in fields(Settings)}
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "'funasr-subs config' lists the settings"
            raise ConfigError(f"{source}: unknown setting {raw_key!r}: {hint}")
        out[key] = _coerce(key, value, source)
    return out


def config_file_path(config_path: Path | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The TOML file to read and whether it must exist: ``--config``, else ``$FUNASR_SUBS_CONFIG``, else default."""
    if config_path is not None:
        return config_path, True
    if environ.get(ENV_PREFIX + "CONFIG"):
        return Path(environ[ENV_PREFIX + "CONFIG"]).expanduser(), True
    return default_config_path(), False


def read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    """The whole config file ({} when an optional file is absent); ConfigError naming the file otherwise."""
    try:
        return tomllib.loads(read_regular_bytes(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist: create it or drop --config") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: byte {exc.object[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start} is not UTF-8: save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None


def read_table(name: str, config_path: Path | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """One table of the config file, e.g. ``[watch]`` or ``[serve]`` ({} when the file or the table is absent)."""
    path, required = config_file_path(config_path, environ)
    table = read_toml(path, required=required).get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: {name} must be a table ([{name}])")
    return table


def load_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The top-level keys of a TOML config as Settings arguments (other tables are for other commands)."""
    data = read_toml(path, required=required)
    top = {k: v for k, v in data.items() if not isinstance(v, dict) or k == "hotwords"}
    return settings_from_mapping(top, f"config file {path}")


_WARNED: set[str] = set()


def unknown_variable_hint(name: str) -> str | None:
    """The warning for a ``FUNASR_SUBS_*`` variable that is no setting (a typo, usually), or None when it is one.

    ``FUNASR_SUBS_SERVE_*`` variables belong to ``serve`` (which checks them itself).
    """
    key = name[len(ENV_PREFIX) :].lower()
    known = {f.name for f in fields(Settings)} | {"config"}
    if not name.startswith(ENV_PREFIX) or key in known or key.startswith("serve_"):
        return None
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"did you mean {ENV_PREFIX}{close[0].upper()}?" if close else "'funasr-subs config' lists the settings"
    return f"warning: environment variable {name} is not a funasr-subs setting and is ignored: {hint}"


def load_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``FUNASR_SUBS_<KEY>`` variables as Settings arguments; an unknown one is warned about once."""
    known = {f.name for f in fields(Settings)}
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in known:  # each variable on its own, so an error names the variable to fix
            out.update(settings_from_mapping({key: value}, f"environment variable {ENV_PREFIX}{key.upper()}"))
        elif (hint := unknown_variable_hint(name)) is not None and name not in _WARNED:
            _WARNED.add(name)
            log.warning("%s", hint)
    return out


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge config file, environment and flags (each a later layer winning) into Settings.

    ``flags`` holds only the options the user gave (None values are ignored). The config file is ``config_path``,
    else ``$FUNASR_SUBS_CONFIG``, else the default path (silently absent).
    """
    environ = os.environ if environ is None else environ
    path, required = config_file_path(config_path, environ)
    merged: dict[str, Any] = {}
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    for key, value in given.items():
        check_setting(key, value, flag_name(key))
    for layer in (load_config_file(path, required=required), load_env(environ), given):
        if "server" in layer and "servers" not in layer:
            merged.pop("servers", None)  # a later single server replaces an earlier pool
        if "layout" in layer:  # a later layout sets what it governs over earlier layers' values
            for key in LAYOUT_KEYS:
                if key not in layer:
                    merged.pop(key, None)
        merged.update(layer)
    if isinstance(merged.get("servers"), list):
        merged["servers"] = tuple(merged["servers"])
    try:
        settings = Settings(**merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    if settings.layout is not None and settings.cue_settings().profile != "zh" and "layout" not in _WARNED:
        _WARNED.add("layout")
        log.warning(
            "warning: --layout %s shapes Chinese (zh) subtitles only; the %s profile keeps its own lines and "
            "punctuation (use --max-lines, --punctuation)",
            settings.layout,
            settings.cue_settings().profile,
        )
    return settings
