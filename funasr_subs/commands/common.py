"""Options shared by several commands, and the one place flags become Settings."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

from funasr_subs.commands import stdout
from funasr_subs.config import (
    LANGUAGES,
    SKIP_RULES,
    SUBTITLE_FORMATS,
    Settings,
    default_config_path,
    load_settings,
    parse_hotword_items,
    real_number,
    whole_number,
)
from funasr_subs.cues.script import SCRIPTS
from funasr_subs.cues.settings import LAYOUTS, PROFILES
from funasr_subs.errors import ConfigError
from funasr_subs.hotwords import fit_hotwords, load_hotwords_file, load_words_file
from funasr_subs.names import ShownFilter

#: The argparse destinations that are Settings keys; a command's own options are simply left out.
_SETTINGS_KEYS = frozenset(f.name for f in fields(Settings))


def _int(text: str) -> int:
    try:
        return whole_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _float(text: str) -> float:
    try:
        return real_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _skip_rules(value: str) -> tuple[str, ...]:
    items = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    if items in (("none",), ("off",)):
        return ()
    bad = [v for v in items if v not in SKIP_RULES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown rule {bad[0]!r}: use {', '.join(SKIP_RULES)} or none")
    return items


def _formats(value: str) -> tuple[str, ...]:
    items = tuple(v.strip().lower().lstrip(".") for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in SUBTITLE_FORMATS]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"use one or more of {', '.join(SUBTITLE_FORMATS)} (comma-separated)")
    return items


def add_common_options(parser: argparse.ArgumentParser, *, quiet: bool = True) -> None:
    """--config, -v, -q, --log-file: every command has them (``quiet=False``: the command has its own -q)."""
    group = parser.add_argument_group("general")
    group.add_argument(
        "--config", type=Path, metavar="FILE", help=f"TOML config file (default: {default_config_path()}, if present)"
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail: time, level and source on each line; -vv debug"
    )
    if quiet:
        group.add_argument(
            "-q", "--quiet", dest="verbose", action="store_const", const=-1, help="only warnings and errors"
        )
    group.add_argument("--log-file", type=Path, metavar="FILE", help="also write the log to FILE")


def add_cue_options(parser: argparse.ArgumentParser, *, only: frozenset[str] | None = None) -> None:
    """The cue engine's numbers; unset means the profile's default. ``only``: just these keys (for ``check``)."""
    options: list[tuple[str, dict[str, Any]]] = [
        (
            "--profile",
            {
                "choices": list(PROFILES),
                "default": None,
                "help": "rule set: zh (default), en, yue, ja or ko (--language picks its own)",
            },
        ),
        (
            "--layout",
            {
                "choices": list(LAYOUTS),
                "default": None,
                "help": "zh: one-line (default: as people write Chinese subtitles), two-line, or asr (the form "
                "before: two lines, the recogniser's punctuation and fillers)",
            },
        ),
        ("--max-width", {"type": _float, "metavar": "N", "help": "line width (zh 16, CJK=1 half-width=0.5; en 42)"}),
        ("--max-lines", {"type": _int, "metavar": "N", "help": "lines per cue (zh 1, en 2)"}),
        ("--min-duration", {"type": _int, "metavar": "MS", "help": "shortest cue (833)"}),
        ("--max-duration", {"type": _int, "metavar": "MS", "help": "longest cue (7000)"}),
        ("--min-gap", {"type": _int, "metavar": "MS", "help": "gap between cues (83)"}),
        ("--max-cps", {"type": _float, "metavar": "N", "help": "reading speed, characters/s (zh 9, en 20)"}),
        ("--pause", {"type": _int, "metavar": "MS", "help": "a silence longer than this breaks a cue (500)"}),
        ("--linger", {"type": _int, "metavar": "MS", "help": "how long a cue may stay after speech (500)"}),
        ("--fps", {"type": _float, "metavar": "FPS", "help": "snap times to frames, e.g. 23.976"}),
        (
            "--punctuation",
            {
                "choices": ["keep", "space"],
                "default": None,
                "help": "space (zh default: no ，。 at a line end, a space inside one) or keep the recogniser's marks",
            },
        ),
        (
            "--verbatim",
            {
                "action": "store_true",
                "default": None,
                "help": "keep fillers (呃, 嗯; 啊/那个 standing alone) in the text; left out by default",
            },
        ),
    ]
    g = parser.add_argument_group("cues (defaults come from --profile)")
    for flag, kwargs in options:
        if only is None or flag[2:].replace("-", "_") in only:
            g.add_argument(flag, **kwargs)
    if only is not None:
        return
    z = parser.add_argument_group("Chinese text")
    z.add_argument(
        "--script",
        choices=list(SCRIPTS),
        default=None,
        help="hans: Simplified, as FunASR writes (default); hant: Traditional; tw: Taiwan; hk: Hong Kong (OpenCC)",
    )
    z.add_argument(
        "--latin-spacing",
        choices=["space", "none"],
        default=None,
        help="between Chinese and English words: space (default) or none",
    )
    z.add_argument(
        "--words",
        dest="words_file",
        type=Path,
        metavar="FILE",
        help="your words, one a line (names, terms): never split, spelled as written; hotwords count too",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Where and what to write."""
    g = parser.add_argument_group("output")
    g.add_argument(
        "--format",
        dest="formats",
        type=_formats,
        metavar="LIST",
        help="srt,ass,vtt,lrc,ass-karaoke (default: srt); ass-karaoke: .ass with words highlighted as spoken",
    )
    g.add_argument("--lang", metavar="CODE", help="language tag in file names: <stem>.<lang>.srt (default zh; '' none)")
    g.add_argument("--output-dir", type=Path, metavar="DIR", help="write subtitles here instead of next to the media")
    g.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace subtitles this tool did not write, and redo files whose subtitles are up to date",
    )


def add_transcribe_options(parser: argparse.ArgumentParser) -> None:
    """Every Settings option as a flag (server, request, output, cues) plus the general ones."""
    add_server_options(parser)
    add_request_options(parser)
    add_output_options(parser)
    add_cue_options(parser)
    add_notify_options(parser)
    add_common_options(parser)


def add_notify_options(parser: argparse.ArgumentParser) -> None:
    """Who is told when a job ends."""
    g = parser.add_argument_group("notification")
    g.add_argument(
        "--on-done",
        metavar="URL",
        help="after each file (done, failed or skipped) POST a JSON summary to this http(s) URL, in the background; "
        "retried --retries times",
    )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """How to reach the FunASR server."""
    g = parser.add_argument_group("server")
    g.add_argument(
        "--server",
        dest="servers",
        action="append",
        metavar="URL",
        help="FunASR server, ws:// or wss:// (default ws://127.0.0.1:10095); repeat it for a pool; "
        "URL#slots=N: N requests at once on that server (1)",
    )
    g.add_argument(
        "--split-minutes",
        type=float,
        metavar="N",
        help="cut long recordings at a silence near every N minutes and send the pieces to several servers at "
        "once (pcm only; default 10 with several servers, 0 = off with one)",
    )
    g.add_argument("--insecure", action="store_true", default=None, help="accept any TLS certificate (FunASR image)")
    g.add_argument("--ca-file", type=Path, metavar="FILE", help="trust this CA/certificate for wss://")
    g.add_argument("--connect-timeout", type=_float, metavar="S", help="seconds to connect (10)")
    g.add_argument(
        "--reply-timeout",
        type=_float,
        metavar="S",
        help="seconds to wait for the reply after the upload (120), plus --reply-timeout-ratio x the audio's length",
    )
    g.add_argument(
        "--reply-timeout-ratio",
        type=_float,
        metavar="R",
        help="extra wait per second of audio (0.5: a 1-hour file may wait 120 + 1800 s)",
    )
    g.add_argument("--retries", type=_int, metavar="N", help="retries after a connection failure (3)")
    g.add_argument("--retry-backoff", type=_float, metavar="S", help="first retry wait, doubled each time (1)")


def add_request_options(parser: argparse.ArgumentParser, *, jobs: bool = True) -> None:
    """What is sent to the server (and, with ``jobs``, how many files at once)."""
    r = parser.add_argument_group("request")
    r.add_argument(
        "--send", choices=["pcm", "mp4"], default=None, help="pcm: decode here (default); mp4: server decodes"
    )
    r.add_argument("--hotwords", dest="hotwords_file", type=Path, metavar="FILE", help="hotwords file: 'word weight'")
    r.add_argument("--hotword", action="append", metavar="WORD=WEIGHT", help="one hotword (repeatable)")
    r.add_argument("--no-itn", dest="itn", action="store_false", default=None, help="no inverse text normalisation")
    r.add_argument(
        "--no-speech-activity",
        dest="speech_activity",
        action="store_false",
        default=None,
        help="do not listen for speech in the audio (no speech intervals in the sidecar; cues timed by tokens alone)",
    )
    r.add_argument(
        "--no-resend-lost",
        dest="resend_lost",
        action="store_false",
        default=None,
        help="do not send again, on its own, speech FunASR returned no text for (it is only reported as lost)",
    )
    r.add_argument(
        "--language",
        choices=list(LANGUAGES),
        default=None,
        help="the spoken language, for SenseVoice (sent as svs_lang): auto, zh, yue, en, ja, ko; it picks the cue "
        "profile, the file tag (.yue.srt, .ja.srt ...) and the skip rules' language too",
    )
    r.add_argument("--audio-track", metavar="N|LANG", help="audio stream: index among audio streams or language")
    r.add_argument(
        "--skip",
        type=_skip_rules,
        metavar="RULES",
        help="skip files whose audio is another language or that already have subtitles in the target language: "
        "audio-language,embedded-subtitles,external-subtitles (the default) or none; transcribe only warns",
    )
    if jobs:
        r.add_argument(
            "--jobs",
            "-j",
            type=_int,
            metavar="N",
            help="files in parallel (transcribe 1, watch 2; with several servers at least their slots)",
        )


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Config file, then environment, then the flags the user gave; hotwords file and --hotword merged."""
    flags = {k: v for k, v in vars(args).items() if k in _SETTINGS_KEYS and v is not None}
    flags.update({k: v for k, v in extra.items() if v is not None})
    settings = load_settings(flags, config_path=getattr(args, "config", None))
    words: dict[str, int] = {}
    if settings.hotwords_file is not None:
        words.update(load_hotwords_file(settings.hotwords_file))
    words.update(settings.hotwords)
    if getattr(args, "hotword", None):
        words.update(parse_hotword_items(args.hotword, "--hotword"))
    words = fit_hotwords(words, "hotwords")
    if words != dict(settings.hotwords):
        settings = settings.replace(hotwords=words)
    return with_user_words(settings)


def with_user_words(settings: Settings) -> Settings:
    """``--words FILE`` (or ``words_file`` in the config) read into ``settings.words``."""
    if settings.words_file is None:
        return settings
    return settings.replace(words=(*settings.words, *load_words_file(settings.words_file)))


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def setup_logging(verbose: int = 0, log_file: Path | None = None, *, split_streams: bool = False) -> None:
    """Handlers are configured here only (the CLI), never at import time.

    ``split_streams``: progress and success lines go to stdout, warnings and errors to stderr (for callers such as
    Bazarr that log anything on stderr as an error).
    """
    # -q: warnings and errors; default: what happens to each file; -v: the same with time, level and logger; -vv: debug
    level = logging.WARNING if verbose < 0 else logging.INFO if verbose < 2 else logging.DEBUG
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose > 0 else "%(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if split_streams:
        handlers[0].setLevel(logging.WARNING)
        out = stdout.LogHandler()  # a full or closed stdout: said once by the CLI, the work goes on
        out.addFilter(_Below(logging.WARNING))
        handlers.append(out)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(fmt))
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"log file {log_file} cannot be opened: {exc.strerror}") from None
        handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        h.addFilter(ShownFilter())  # one line per event, whatever bytes a file name holds
        root.addHandler(h)
    root.setLevel(level)
    if verbose < 2:
        logging.getLogger("websockets").setLevel(logging.WARNING)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM acts as Ctrl-C does (``transcribe`` outside its batch, ``sync`` throughout): KeyboardInterrupt, exit
    130, the work started (ffmpeg, a server's request) stopped, instead of a death by the signal that left ffmpeg
    running.

    SIGTERM runs SIGINT's handler rather than raising KeyboardInterrupt itself: inside ``asyncio.run`` that handler
    cancels the main task, whose ``finally`` clauses stop ffmpeg; a KeyboardInterrupt raised at whatever point the
    loop was left the task unfinished and ffmpeg running on after the exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # a background job of a script inherits SIGINT ignored: asyncio then leaves it alone, and SIGTERM would have no
    # Ctrl-C to act as (it did nothing at all); for the command's run, SIGINT is Python's own again
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, sigint)


def _as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # (changed since: a plugin's doing)
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)  # asyncio's (cancels the main task) or Python's own (KeyboardInterrupt)
