"""``funasr-subs transcribe PATH...``: subtitles for files and folders, through a FunASR server."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from funasr_subs.commands import stdout
from funasr_subs.commands.common import add_transcribe_options, settings_from_args, setup_logging
from funasr_subs.commands.parsing import seconds
from funasr_subs.errors import (
    CancelledError,
    FunasrSubsError,
    MediaNotFoundError,
    ReplyTimeoutError,
    ServerError,
    StdoutError,
)
from funasr_subs.names import shown, too_long, too_long_message
from funasr_subs.progress import DEFAULT_EVERY_S, ProgressLog, StageClock

if TYPE_CHECKING:  # the pipeline (websockets, asyncio) and tqdm are imported when files are processed, not for --help
    from funasr_subs.config import Settings
    from funasr_subs.model import Result
    from funasr_subs.recognition.pool import Pool

log = logging.getLogger(__name__)

#: Signals that stop a run cleanly (running jobs cancelled, nothing half-written left).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_T = TypeVar("_T")

HELP = """\
examples:
  funasr-subs transcribe film.mkv
  funasr-subs transcribe --format srt,ass --lang zh-CN ~/Videos/Show
  funasr-subs transcribe --send mp4 --server wss://nas:10095 --insecure talk.mp4
  funasr-subs transcribe --hotwords names.txt --hotword 达摩院=20 -j 2 a.mp4 b.mp4
  funasr-subs transcribe --server ws://gpu1:10095#slots=2 --server ws://gpu2:10095 -j 4 ~/Videos/Talks
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="write subtitles next to media files",
        description="Transcribe media files (or every media file below folders) into SRT/ASS/VTT subtitles: "
        "<stem>.<lang>.<ext> next to each file (or in --output-dir), plus the sidecar <stem>.funasr.json holding "
        "the server's reply, so 'funasr-subs retime' can rebuild the subtitles without the server. Files with "
        "up-to-date subtitles are skipped; subtitles this tool did not write are never replaced (see --overwrite).",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="media files or folders")
    parser.add_argument("--check", action="store_true", help="print the rule check of every subtitle written")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be transcribed and why each other file would be skipped; send and write nothing",
    )
    parser.add_argument(
        "--progress-every",
        type=seconds,
        default=DEFAULT_EVERY_S,
        metavar="S",
        help=f"without a terminal: a progress line per running file every S seconds ({DEFAULT_EVERY_S:g}; 0 = none)",
    )
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def real_path(path: Path) -> Path:
    """``path`` with symlinks resolved as far as they go: a symlink loop (``a -> b -> a``) stays as it is instead
    of raising (Path.resolve raises RuntimeError for loops before Python 3.13)."""
    return Path(os.path.realpath(path))


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def iter_media(paths: Iterable[Path]) -> Iterator[Path]:
    """Explicit files as given (even without a media suffix), folders walked for media files; each file once."""
    seen: set[Path] = set()
    for candidate in _walk(paths):
        key = real_path(candidate)
        if key not in seen:
            seen.add(key)
            yield candidate


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    from funasr_subs.media.probe import MEDIA_SUFFIXES

    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    candidate = Path(root) / name
                    if not _hidden(candidate) and candidate.suffix.lower() in MEDIA_SUFFIXES:
                        yield candidate
        else:
            yield path


class _Bars:
    """tqdm bars when stderr is a terminal: one across files, one per running file (its stage, the upload's share,
    the time the server has been recognising and the estimate). Without a terminal: a log line per running file every
    ``every`` seconds (0: none)."""

    def __init__(self, total: int, enabled: bool, every: float = 0.0) -> None:
        from tqdm import tqdm

        self.every = every
        self.enabled = enabled
        self.lock = threading.Lock()
        self.free = list(range(1, 64))
        self.overall = tqdm(total=total, unit="file", desc="files", disable=not enabled, position=0)

    def file_progress(self, media: Path) -> tuple[Any, Any]:
        if not self.enabled:
            return (ProgressLog(media, self.every) if self.every > 0 else None), None
        from tqdm import tqdm

        with self.lock:
            if not self.free:  # more uploads at once than bar rows: this one runs without a bar of its own
                return None, None
            slot = self.free.pop(0)
        bar = tqdm(total=100, desc=media.name[:30], unit="%", leave=False, position=slot, bar_format="{l_bar}{bar}|")
        stages = StageClock()

        def progress(stage: str, fraction: float) -> None:
            stages.update(stage, fraction)
            bar.set_description_str(f"{media.name[:24]} {stages.short()}")
            bar.n = round(fraction * 100) if stage in ("upload", "recognise") else (100 if stage != "probe" else 0)
            bar.refresh()

        def close() -> None:
            bar.close()
            with self.lock:
                self.free.insert(0, slot)

        return progress, close


def _probably_up_to_date(media: Path, settings: Settings) -> bool:
    """A sidecar newer than the media, and no --overwrite: the file will probably be skipped."""
    from funasr_subs.sidecar import sidecar_path_for

    if settings.overwrite:
        return False
    try:
        return sidecar_path_for(media, settings.output_dir).stat().st_mtime_ns >= media.stat().st_mtime_ns
    except OSError:
        return False


def _probe_ahead(media: Path, settings: Settings) -> None:
    """Start the ffprobe of a file that will run soon and needs one (skipped when its sidecar is newer: probably up
    to date)."""
    from funasr_subs.media.probe import probe_ahead

    if not _probably_up_to_date(media, settings):
        probe_ahead(media)


def _start_early(media: Path, settings: Settings) -> None:
    """One of the first files: its ffmpeg (or, for MPEG-TS and the like, its ffprobe) starts now, while the rest of
    the program loads; the job takes it over (see funasr_subs.media.early)."""
    from funasr_subs.errors import FunasrSubsError
    from funasr_subs.media import early
    from funasr_subs.media.audio import first_args

    if _probably_up_to_date(media, settings) or not media.is_file():
        return
    try:
        argv = first_args(media, settings.send)
    except FunasrSubsError:  # ffmpeg not installed: the job says so, with the file's name
        return
    if argv is None:
        _probe_ahead(media, settings)
    else:
        early.start(media, argv)


def _process(
    media: Path,
    settings: Settings,
    bars: _Bars,
    cancel: threading.Event,
    pool: Pool,
    ahead: Path | None = None,
) -> Result:
    """One file; ``ahead``: the file that starts when this one ends, whose ffprobe runs meanwhile."""
    from funasr_subs.pipeline import generate_subtitles

    if ahead is not None and not cancel.is_set():
        _probe_ahead(ahead, settings)
    progress, close = bars.file_progress(media)
    try:
        return generate_subtitles(media, settings, progress=progress, cancel=cancel, pool=pool, enforce_skip=False)
    finally:
        if close is not None:
            close()


def _report_check(result: Result, settings: Settings) -> None:
    from funasr_subs.check import as_made, check_cues, format_report

    report = check_cues(result.cues, as_made(settings.cue_settings()))
    name = ", ".join(p.name for p in result.written) or str(result.media)
    stdout.line(format_report(report, shown(name)))


def transcribe_all(
    media_files: list[Path],
    settings: Settings,
    *,
    show_bars: bool,
    check: bool = False,
    missing: int = 0,
    progress_every: float = 0.0,
) -> int:
    """Process files (``settings.jobs`` at once); one line per file; exit code 1 when any file failed.

    ``missing``: paths already reported as not found; the closing "N of M file(s) failed" line counts them too.

    Ctrl-C (or SIGTERM) cancels every running job within a fraction of a second; nothing half-written remains.
    """
    media_files, clashes = _unique_outputs(media_files, settings)
    for media, first in clashes.items():
        log.error(
            "error: %s: its subtitles would replace those of %s (same name): rename one, or transcribe them "
            "separately into different --output-dir folders",
            media,
            first,
        )
    from funasr_subs.recognition.pool import Pool

    pool = Pool.from_settings(settings, permanent=True)
    try:
        answered = _servers_answer(pool, media_files, settings)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see _sigterm_as_interrupt), while the servers are checked
        _drop_work_ahead()
        raise
    if not answered:
        _drop_work_ahead()
        return 2 if pool.all_wrong() else 1  # 2: the server is the wrong kind (a setup to change, said in one line)
    failures = 0
    bars = _Bars(len(media_files), show_bars, progress_every)
    cancel = threading.Event()
    if show_bars:
        from tqdm.contrib.logging import logging_redirect_tqdm
    redirect = logging_redirect_tqdm() if show_bars else contextlib.nullcontext()
    executor = ThreadPoolExecutor(max_workers=pool.workers(settings.jobs))
    # Ctrl-C and SIGTERM only set the cancel event: raising KeyboardInterrupt at an arbitrary point could leave a
    # lock held (logging, futures) and hang the shutdown. Every job sees the event within 0.1 s and stops.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, lambda *_: cancel.set()) for sig in _STOP_SIGNALS} if in_main else {}
    try:
        with redirect:
            failures, halted = _collect(executor, media_files, settings, bars, cancel, check, pool)
    except KeyboardInterrupt:  # not in the main thread: no handler of ours
        cancel.set()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        _drop_work_ahead()
        bars.overall.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if halted:
        wrong = pool.all_wrong()
        if not (wrong and halted[1] == 0 and len(pool) == 1):  # (else the file's line has said it all)
            log.error("error: no FunASR server can be used now (%s): %d file(s) not transcribed", *halted)
        return 2 if wrong else 1
    if cancel.is_set():
        raise KeyboardInterrupt
    failures += len(clashes) + missing
    if failures:
        log.error("%d of %d file(s) failed", failures, len(media_files) + len(clashes) + missing)
    return 1 if failures else 0


def _drop_work_ahead() -> None:
    """The ffmpeg and ffprobe runs started ahead for files no job took: stopped and reaped."""
    from funasr_subs.media import early
    from funasr_subs.media.probe import drop_probes_ahead

    drop_probes_ahead()
    early.drop()


def _unique_outputs(media_files: list[Path], settings: Settings) -> tuple[list[Path], dict[Path, Path]]:
    """Each file once, minus the files whose subtitle or sidecar an earlier file writes too (one stem in one
    folder, or one --output-dir for several folders); those map to that earlier file."""
    from funasr_subs.pipeline import output_paths
    from funasr_subs.sidecar import sidecar_path_for

    seen: set[Path] = set()
    owners: dict[Path, Path] = {}
    todo: list[Path] = []
    clashes: dict[Path, Path] = {}
    for media in media_files:
        if real_path(media) in seen:
            continue
        seen.add(real_path(media))
        targets = [*output_paths(media, settings).values(), sidecar_path_for(media, settings.output_dir)]
        keys = [real_path(t) for t in targets]
        first = next((owners[k] for k in keys if k in owners), None)
        if first is not None:
            clashes[media] = first
            continue
        owners.update(dict.fromkeys(keys, media))
        todo.append(media)
    return todo, clashes


def _servers_answer(pool: Pool, media_files: list[Path], settings: Settings) -> bool:
    """Before a batch that needs a server: probe every server once; one line and False when none answers."""
    import asyncio

    from funasr_subs.pipeline import skip_reason
    from funasr_subs.recognition.pool import describe

    if not any(m.is_file() and skip_reason(m, settings, rules=False) is None for m in media_files):
        return True  # nothing to send (up to date, a user's subtitle in the way, or not a file: said per file)
    # (the skip rules are left out: transcribe does a file they reject, with a warning)
    statuses = asyncio.run(_interruptible(pool.check()))
    if any(s.state == "up" for s in statuses):
        for s in statuses:
            if s.state != "up":
                log.warning("warning: %s (%s for now)", s.last_error, "not used" if s.state == "unusable" else "down")
        return True
    if len(statuses) == 1 and len(media_files) == 1:
        log.error("error: %s: %s", media_files[0], statuses[0].last_error)
    elif len(statuses) == 1:
        log.error("error: %s; none of %d file(s) was transcribed", statuses[0].last_error, len(media_files))
    else:
        reasons = describe(statuses)
        log.error(
            "error: no FunASR server answered (%s); none of %d file(s) was transcribed", reasons, len(media_files)
        )
    return False


async def _interruptible(work: Coroutine[Any, Any, _T]) -> _T:
    """``work``, cancelled by Ctrl-C or SIGTERM, which then raise KeyboardInterrupt here: a KeyboardInterrupt raised by
    the signal inside one of the loop's callbacks (a connection being made) would leave that connection half-built
    and its later close printing a traceback."""
    import asyncio

    if threading.current_thread() is not threading.main_thread():
        return await work
    loop = asyncio.get_running_loop()
    task = loop.create_task(work)
    caught: list[int] = []

    def stop(sig: int) -> None:
        caught.append(sig)
        task.cancel()

    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        result = await task
    except asyncio.CancelledError:
        if caught:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
    if caught:  # (the signal came as the work ended)
        raise KeyboardInterrupt
    return result


def _as_completed(futures: Iterable[Future[Result]]) -> Iterator[Future[Result]]:
    """Like ``as_completed``, waking every 0.5 s: a Ctrl-C or SIGTERM the kernel hands to a worker thread is only
    acted on (by the handler, in this main thread) when this thread runs."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        yield from done


def _collect(
    executor: ThreadPoolExecutor,
    media_files: list[Path],
    settings: Settings,
    bars: _Bars,
    cancel: threading.Event,
    check: bool,
    pool: Pool,
) -> tuple[int, tuple[str, int] | None]:
    """(failures, None) or, when every server became unusable, (failures, (why, files left))."""
    from funasr_subs.check import cue_count
    from funasr_subs.recognition.pool import describe

    failures = 0
    why = ""
    left = 0
    unreported: StdoutError | None = None  # --check reports that standard output could not take
    later = [*media_files[settings.jobs :], *[None] * settings.jobs]
    futures = {
        executor.submit(_process, media, settings, bars, cancel, pool, ahead): media
        for media, ahead in zip(media_files, later, strict=False)
    }
    for future in _as_completed(futures):
        media = futures[future]
        try:
            result = future.result()
        except CancelledError:
            left += 1
            continue  # interrupted: said once by the caller
        except FunasrSubsError as exc:
            failures += 1
            log.error("error: %s", exc)
            # answers that cannot change, or every server unreachable through a whole round of retries: the other
            # files would fail alike (and each wait for the servers in turn), so the batch stops here; a reply
            # timeout (a busy server) does not stop it
            unreachable = isinstance(exc, ServerError) and exc.retryable and not isinstance(exc, ReplyTimeoutError)
            if not why and (pool.exhausted or (unreachable and pool.all_down())):
                why = describe(pool.status())
                cancel.set()
        except Exception as exc:  # a bug must not stop the other files
            failures += 1
            log.exception("error: %s: unexpected failure (%s); please report it", media, exc)
        else:
            if result.status == "skipped":
                log.info("skipped: %s: %s", media, result.reason)
            else:
                cues, seconds = cue_count(len(result.cues)), result.timings.total_s
                recovery = result.recovery.summary() if result.recovery else ""
                log.info(
                    "done: %s -> %s (%s, %.1f s)%s",
                    media,
                    result.written_names(),
                    cues,
                    seconds,
                    f"; {recovery}" if recovery else "",
                )
                if check and unreported is None:
                    try:
                        _report_check(result, settings)
                    except StdoutError as exc:  # the other files are still done; the CLI says it at the end
                        unreported = exc
        bars.overall.update(1)
    if unreported is not None:
        raise unreported
    return failures, (why, left) if why else None


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    settings = settings_from_args(args)
    media_files: list[Path] = []
    missing = 0
    for path in args.paths:
        try:
            exists = path.exists()
        except OSError as exc:
            if not too_long(exc):
                raise
            missing += 1
            log.error("error: %s", too_long_message(path))
            continue
        if not exists:
            missing += 1
            why = "is a symlink that leads nowhere (broken, or a loop): fix the link" if path.is_symlink() else ""
            log.error("error: %s", MediaNotFoundError(why or "file not found: check the path", path=path))
            continue
        found = list(iter_media([path]))
        if path.is_dir() and not found:
            log.warning("warning: %s: no media files in this folder", path)
        media_files.extend(found)
    if args.dry_run:
        return dry_run(media_files, settings, missing=missing)
    if not media_files:
        return 1 if missing else 0
    with _sigterm_as_interrupt():
        for media in media_files[: settings.jobs]:  # their ffmpeg starts while the pipeline (websockets...) is imported
            _start_early(media, settings)
        bars = sys.stderr.isatty() and args.verbose >= 0  # -q: no progress bars either
        return transcribe_all(
            media_files,
            settings,
            show_bars=bars,
            check=args.check,
            missing=missing,
            progress_every=args.progress_every,
        )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM acts as Ctrl-C does outside the batch too (the servers' check before it, the ffmpeg started ahead):
    KeyboardInterrupt, exit 130, the work started ahead stopped, instead of a death by the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def dry_run(media_files: list[Path], settings: Settings, *, missing: int = 0) -> int:
    """``--dry-run``: one line per file on stdout, what a real run would do and why; nothing is sent or written."""
    from funasr_subs.pipeline import output_paths, skip_reason

    todo, clashes = _unique_outputs(media_files, settings)
    would = fail = 0
    for media in todo:
        reason = skip_reason(media, settings, rules=False)  # transcribe does a file the skip rules reject
        problem = _unusable(media) if reason is None else None
        if problem is not None:
            fail += 1
            stdout.line(f"would fail: {media}: {problem}")
        elif reason is None:
            would += 1
            names = ", ".join(
                p.name if p.parent == media.parent else str(p) for p in output_paths(media, settings).values()
            )
            stdout.line(f"would transcribe: {media} -> {names}")
        else:
            stdout.line(f"would skip: {media}: {reason}")
    for media, first in clashes.items():
        stdout.line(f"would skip: {media}: its subtitles would replace those of {first} (same name)")
    skipped = len(todo) - would - fail + len(clashes)
    failing = f", {fail} would fail" if fail else ""
    stdout.line(f"dry run: {would} to transcribe, {skipped} to skip{failing}; nothing was sent or written")
    return 1 if missing or fail else 0


def _unusable(media: Path) -> str | None:
    """Why ffprobe says a file cannot be transcribed (not media, no audio...), as the real run would; None if it can."""
    from funasr_subs.errors import BadInputError
    from funasr_subs.media.probe import probe

    try:
        probe(media)
    except BadInputError as exc:
        return exc.message
    return None
