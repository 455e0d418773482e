"""``funasr-subs retime INPUT...``: rebuild subtitles from a saved FunASR reply with new cue settings, no server."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from funasr_subs.check import as_made, check_cues, cue_count, format_report
from funasr_subs.commands import stdout
from funasr_subs.commands.common import (
    add_common_options,
    add_cue_options,
    add_output_options,
    setup_logging,
    with_user_words,
)
from funasr_subs.config import (
    LAYOUT_KEYS,
    SUBTITLE_FORMATS,
    Settings,
    format_suffix,
    load_settings,
    settings_from_mapping,
    whole_number,
)
from funasr_subs.cues import build_cues
from funasr_subs.errors import (
    BadInputError,
    ConfigError,
    FunasrSubsError,
    NoSpeechError,
    OutputError,
    OutputExistsError,
    ProtocolError,
    StdoutError,
)
from funasr_subs.model import Cue, Transcript
from funasr_subs.names import shown, too_long, too_long_message
from funasr_subs.pipeline import output_paths
from funasr_subs.protocol import gc_paused, parse_reply, parse_session
from funasr_subs.safeio import read_regular_text
from funasr_subs.sidecar import (
    MAX_SIDECAR_BYTES,
    SUFFIX,
    Sidecar,
    is_sidecar,
    merged_outputs,
    parse_json,
    read_sidecar,
    sidecar_from_dict,
    sidecar_path_for,
    try_read_sidecar,
)
from funasr_subs.writers import atomic_write_text, check_replaceable, digest, render

log = logging.getLogger(__name__)

HELP = """\
examples:
  funasr-subs retime film.mkv --max-cps 12            # uses film.funasr.json, rewrites film.zh.srt
  funasr-subs retime film.funasr.json --shift -400    # everything 0.4 s earlier
  funasr-subs retime film.mkv --fps 23.976 --format srt,ass
  funasr-subs retime reply.json -o out.en.vtt --profile en --check

INPUT is a media file (its sidecar <stem>.funasr.json is used), a sidecar, or a FunASR reply saved as JSON
(a .jsonl file holds a whole 2pass session, one reply per line). Settings recorded in a sidecar are the
starting point; the flags you give change them.
"""

#: Settings keys a sidecar records that retime reuses (the cue engine's numbers and the output naming).
RECORDED_KEYS = (
    "profile",
    "layout",
    "max_width",
    "max_lines",
    "min_duration",
    "max_duration",
    "min_gap",
    "max_cps",
    "pause",
    "linger",
    "fps",
    "punctuation",
    "verbatim",
    "script",
    "latin_spacing",
    "words",
    "hotwords",
    "formats",
    "lang",
    "language",  # its profile and file tag (.ja.srt); nothing is sent
)
_SETTINGS_KEYS = frozenset(f.name for f in dataclasses.fields(Settings))
#: The sidecar's record of the last ``--shift`` (not a Settings key: only retime shifts).
SHIFT_KEY = "shift_ms"
#: The largest ``--shift`` either way: a day. More is a mistake (``--shift 100000000000000000000`` was clamped by
#: pysubs2 to the latest time a format holds, with a warning, and the subtitle written anyway).
MAX_SHIFT_MS = 86_400_000


def shift_ms(value: str) -> int:
    """The ``--shift`` argparse type: whole milliseconds in ASCII digits, within :data:`MAX_SHIFT_MS` either way."""
    try:
        number = whole_number(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None
    if abs(number) > MAX_SHIFT_MS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is out of range: give -{MAX_SHIFT_MS} to {MAX_SHIFT_MS} ms (a day)"
        )
    return number


@dataclass(frozen=True)
class Source:
    """What one INPUT gives: the transcript (sidecar offset applied) and how to name and own the outputs."""

    path: Path
    transcript: Transcript
    naming: Path  # output names are output_paths(naming, settings): <naming stem>.<lang>.<ext> beside it
    sidecar_path: Path | None = None
    sidecar: Sidecar | None = None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retime",
        help="rebuild subtitles from a saved reply with new cue settings",
        description="Rebuild subtitles without the server, from a media file's sidecar, a sidecar, or a FunASR "
        "reply saved as JSON, with new cue settings, a time shift or frame snapping.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="media file, sidecar or reply JSON")
    parser.add_argument(
        "--shift",
        type=shift_ms,
        metavar="MS",
        help="move every cue by MS from the recognised times (may be negative; remembered like the cue settings)",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write this one file (format from suffix)")
    parser.add_argument("--check", action="store_true", help="print the rule check of what was written")
    add_output_options(parser)
    add_cue_options(parser)
    add_common_options(parser)
    parser.set_defaults(func=run)


# --- reading the input ------------------------------------------------------------------------------------
def _transcript_of(reply: Mapping[str, Any], path: Path | None = None) -> Transcript:
    """A saved reply's transcript; a reply that cannot be read is bad input here (live, it is the server's fault)."""
    try:
        if isinstance(reply.get("session"), list):
            return parse_session(r for r in reply["session"] if isinstance(r, Mapping))
        if not any(key in reply for key in ("text", "stamp_sents", "timestamp")):
            raise BadInputError("not a FunASR reply (no text, stamp_sents or timestamp)")
        return parse_reply(reply)
    except ProtocolError as exc:
        raise BadInputError(f"the saved reply cannot be used ({exc.message})", path=path) from None


def _from_sidecar(path: Path, sidecar: Sidecar) -> Source:
    stem_name = sidecar.media_name or (path.name[: -len(SUFFIX)] + ".media" if is_sidecar(path) else path.name)
    transcript = _transcript_of(sidecar.reply, path).shifted(sidecar.offset_ms)
    return Source(path, transcript, naming=path.parent / stem_name, sidecar_path=path, sidecar=sidecar)


def _load_json(path: Path) -> tuple[Any, str]:
    """The parsed file and its text."""
    try:
        text = read_regular_text(path, MAX_SIDECAR_BYTES, encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInputError("file not found: check the path", path=path) from None
    except OSError as exc:
        raise BadInputError(f"cannot be read ({exc.strerror or exc})", path=path) from None
    except UnicodeDecodeError as exc:
        raise BadInputError(f"cannot be read ({exc}): save it as UTF-8", path=path) from None
    try:
        if path.suffix.lower() == ".jsonl":
            return [parse_json(line) for line in text.splitlines() if line.strip()], text
        return parse_json(text), text
    except ValueError as exc:
        raise BadInputError(
            f"not valid JSON ({exc}): give a FunASR reply, a sidecar or a media file", path=path
        ) from None


def read_source(path: Path, output_dir: Path | None, output: Path | None = None) -> Source:
    """Recognise INPUT (sidecar, reply JSON/JSONL, or media with a sidecar) and read its transcript."""
    if is_sidecar(path):
        return _from_sidecar(path, read_sidecar(path))
    if path.suffix.lower() in (".json", ".jsonl"):
        folder = output.parent if output is not None else output_dir  # where the subtitles go
        data, text = _load_json(path)
        if isinstance(data, dict) and isinstance(data.get("reply"), dict):
            return _from_sidecar(path, sidecar_from_dict(data, str(path)))
        if isinstance(data, list):
            replies = [r for r in data if isinstance(r, Mapping)]
            if not replies:
                raise BadInputError("holds no FunASR reply", path=path)
            return _from_reply(path, {"session": replies}, _transcript_of({"session": replies}, path), folder)
        if isinstance(data, dict):
            return _from_reply(path, data, _transcript_of(data, path), folder, text)
        raise BadInputError("not a FunASR reply or a sidecar", path=path)
    if path.is_dir():
        raise BadInputError("is a folder: give media files, sidecars or reply JSON files", path=path)
    candidates = [
        (output_dir / f"{path.stem}{SUFFIX}") if output_dir is not None else None,
        path.parent / f"{path.stem}{SUFFIX}",
    ]
    for side in candidates:
        if side is not None and side.exists():
            sidecar = read_sidecar(side)
            if path.exists() and not sidecar.matches(path):
                log.warning("warning: %s changed since it was transcribed; the times may no longer fit", path)
            source = _from_sidecar(side, sidecar)
            return dataclasses.replace(source, path=path, naming=path)
    if not path.exists():
        raise BadInputError("file not found: check the path", path=path)
    where = f"in {output_dir} or beside it" if output_dir is not None else "beside it"
    raise BadInputError(
        f"no sidecar {path.stem}{SUFFIX} {where}: transcribe it first (funasr-subs transcribe), or give the "
        "--output-dir it was transcribed with",
        path=path,
    )


def _from_reply(
    path: Path, reply: dict[str, Any], transcript: Transcript, folder: Path | None, text: str = ""
) -> Source:
    """A reply saved as JSON. What retime writes from it is recorded in ``<stem>.funasr.json`` in ``folder``, where
    the subtitles go (None: beside the reply), as for a media file, unless that name is another file's sidecar or
    the folder cannot be written."""
    side = sidecar_path_for(path, folder)
    existing = try_read_sidecar(side, reply=False)  # its outputs and settings: the reply is replaced
    taken = existing.media_name != path.name if existing is not None else side.exists() or side.is_symlink()
    if taken or not os.access(side.parent, os.W_OK):
        log.debug("%s belongs to another file: what is written from %s is not recorded", side, path)
        return Source(path, transcript, naming=path)
    st = path.stat()
    sidecar = dataclasses.replace(
        existing or Sidecar(reply=reply),
        reply=reply,
        media_name=path.name,
        media_size=st.st_size,
        media_mtime_ns=st.st_mtime_ns,
    )
    if text:  # the file is this reply's JSON: the sidecar takes it as it is
        sidecar = sidecar.with_reply_text(text.strip())
    return Source(path, transcript, naming=path, sidecar_path=side, sidecar=sidecar)


# --- settings and targets --------------------------------------------------------------------------------
def settings_for(source: Source, args: argparse.Namespace) -> Settings:
    """Config file < environment < what the sidecar recorded < the flags given now."""
    recorded: dict[str, Any] = {}
    if source.sidecar is not None:
        raw = {k: v for k, v in source.sidecar.settings.items() if k in RECORDED_KEYS and v is not None}
        try:
            recorded = settings_from_mapping(raw, str(source.sidecar_path))
        except ConfigError as exc:
            log.warning("warning: ignoring the settings recorded in the sidecar: %s", exc)
    flags = {k: v for k, v in vars(args).items() if k in _SETTINGS_KEYS and v is not None}
    if "layout" in flags:  # a layout given now sets what it governs: a recorded --max-lines 2 does not undo it
        for key in LAYOUT_KEYS:
            recorded.pop(key, None)
    return with_user_words(load_settings({**recorded, **flags}, config_path=getattr(args, "config", None)))


def configured_output_dir(args: argparse.Namespace) -> Path | None:
    """The config file's (or environment's) ``output_dir``: where ``transcribe`` put the sidecars."""
    return load_settings({}, config_path=getattr(args, "config", None)).output_dir


def recorded_shift(source: Source) -> int:
    """The ``--shift`` the last retime beside this sidecar used (0 when none, or when the value is damaged)."""
    value = source.sidecar.settings.get(SHIFT_KEY, 0) if source.sidecar is not None else 0
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SHIFT_MS:
        return value
    return 0


def output_format(output: Path, formats: Sequence[str] = ()) -> str:
    """The subtitle format an ``-o FILE`` asks for, from its suffix (``.ass`` is ``ass-karaoke`` when ``formats``
    asks for that)."""
    fmt = output.suffix.lower().lstrip(".")
    suffixes = sorted({format_suffix(f) for f in SUBTITLE_FORMATS})
    if fmt not in suffixes:
        raise ConfigError(f"-o {output}: the suffix must be one of .{', .'.join(suffixes)}")
    return next((f for f in formats if format_suffix(f) == fmt and f != fmt), fmt)


def targets_for(source: Source, settings: Settings, output: Path | None) -> dict[str, Path]:
    if output is not None:
        return {output_format(output, settings.formats): output}
    return output_paths(source.naming, settings)


def _check_fits(cues: list[Cue], targets: dict[str, Path], shift: int) -> None:
    """ConfigError when the shift moves the last cue past the latest time a target's format can hold (pysubs2 would
    clamp it there, and every cue past it would show at the same moment)."""
    from pysubs2.formats import subrip, substation

    # WebVTT writes times as SubRip does; .lrc writes minutes past 99 as they are
    latest = {"ass": substation.MAX_REPRESENTABLE_TIME, "srt": subrip.MAX_REPRESENTABLE_TIME}
    latest["vtt"] = latest["srt"]
    end = max((cue.end_ms for cue in cues), default=0)
    for fmt in targets:
        limit = latest.get(format_suffix(fmt))
        if limit is not None and end > limit:
            raise ConfigError(
                f"--shift {shift} moves the last cue to {end / 3_600_000:.1f} h, past the latest time a "
                f".{format_suffix(fmt)} file holds ({limit / 3_600_000:.1f} h): give a smaller shift"
            )


def _ours(source: Source, path: Path) -> bool:
    return source.sidecar is not None and source.sidecar.wrote(path)


# --- the job ----------------------------------------------------------------------------------------------
def retime_one(path: Path, args: argparse.Namespace) -> tuple[list[Cue], dict[str, Path]]:
    """Read one INPUT, rebuild its cues and write them; returns the cues and the files written."""
    source = read_source(path, args.output_dir, args.output)
    settings = settings_for(source, args)
    shift = args.shift if args.shift is not None else recorded_shift(source)
    transcript = source.transcript.shifted(shift)
    if source.transcript.tokens and not transcript.tokens:
        raise ConfigError(f"--shift {shift} moves every word before the start: give a smaller shift")
    if not transcript.tokens:
        raise NoSpeechError("the reply holds no speech (empty text): nothing to write", path=path)
    targets = targets_for(source, settings, args.output)
    listened = source.sidecar.speech if source.sidecar is not None else None  # cue edges on the speech heard
    heard = listened.shifted(shift).intervals if listened is not None else ()
    cues = build_cues(transcript.tokens, settings.cue_settings(), words="ass-karaoke" in targets, speech=heard)
    if shift:
        _check_fits(cues, targets, shift)
    for target in targets.values():
        check_replaceable(target)  # a link or a device is never replaced, --overwrite or not
        if target.exists() and not settings.overwrite and not _ours(source, target):
            raise OutputExistsError(  # named once: the error is "<input>: <subtitle> exists ..."
                f"{target.name} exists and was not written by funasr-subs: use --overwrite to replace it",
                path=path,
            )
    texts = {fmt: render(cues, fmt, settings.script) for fmt in targets}
    sidecar, side_path = source.sidecar, source.sidecar_path
    if sidecar is not None and side_path is not None and os.access(side_path.parent, os.W_OK):
        # the sidecar first: it records the digests that mark the subtitles below as ours
        # files beside the sidecar are recorded by name, others (-o elsewhere) by absolute path
        here = os.path.realpath(side_path.parent)  # realpath, not resolve(): a symlink loop must not raise
        owned = {
            (t.name if os.path.realpath(t.parent) == here else os.path.realpath(t)): digest(texts[fmt])
            for fmt, t in targets.items()
        }
        recorded = dict(sidecar.settings)
        if args.output is None:
            used = settings.to_dict()  # a key left unset now (e.g. max_lines under a new --layout) is unset there too
            for key in RECORDED_KEYS:
                if key in used:
                    recorded[key] = used[key]
                else:
                    recorded.pop(key, None)
            recorded[SHIFT_KEY] = shift
        updated = dataclasses.replace(sidecar, outputs=merged_outputs(sidecar, owned), settings=recorded)
        new = not side_path.exists()
        atomic_write_text(side_path, updated.to_json(), elsewhere="-o FILE")
        if new:  # a reply's first retime: the file beside it is ours too, and the user should know why it is there
            log.info(
                "also wrote %s: it records what was written from %s, so a later retime may replace it", side_path, path
            )
    for fmt, target in targets.items():
        atomic_write_text(
            target,
            texts[fmt],
            may_replace=lambda p: settings.overwrite or _ours(source, p),
            elsewhere="-o FILE" if args.output is not None else "--output-dir DIR",
        )
    if args.check:
        report = check_cues(cues, as_made(settings.cue_settings()))
        stdout.line(format_report(report, shown(", ".join(t.name for t in targets.values()))))
    return cues, targets


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    if args.output is not None:
        if len(args.inputs) != 1:
            raise ConfigError("-o/--output writes one file: give exactly one INPUT")
        output_format(args.output)
    # where transcribe put the sidecars: --output-dir, else the configured one (made when it does not exist yet)
    output_dir = args.output_dir if args.output_dir is not None else configured_output_dir(args)
    if output_dir is not None and not output_dir.is_dir():
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {output_dir}: {exc.strerror}") from None
        log.info("created the output folder %s", output_dir)
    args = argparse.Namespace(**{**vars(args), "output_dir": output_dir})
    failures = 0
    for path in args.inputs:
        try:
            with gc_paused():  # a 10-hour transcript is ~10^6 short-lived objects and no cycles: see gc_paused
                cues, targets = retime_one(path, args)
        except StdoutError:  # the --check report's reader is gone: the CLI says so once
            raise
        except FunasrSubsError as exc:
            if exc.path is None:
                exc.path = path
            failures += 1
            log.error("error: %s", exc)
            continue
        except OSError as exc:  # a name no file system holds (the input's, or -o's)
            if not too_long(exc):
                raise
            failures += 1
            log.error("error: %s", too_long_message(exc.filename or path))
            continue
        log.info("retimed: %s -> %s (%s)", path, ", ".join(str(t) for t in targets.values()), cue_count(len(cues)))
    if failures and len(args.inputs) > 1:
        log.error("%d of %d input(s) failed", failures, len(args.inputs))
    return 1 if failures else 0
