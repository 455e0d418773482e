"""Work done ahead in a background thread while ffmpeg starts and the server recognises: numpy for the speech
band's level (its import, ~0.05 s, then overlaps ffmpeg's start, not the audio's first chunk), and
what building and writing the cues will need once the reply is in (the word segmenter's dictionary, ~0.1 s; the
plugins, found among the installed distributions). A real server takes seconds to minutes per file, so by the reply
this is done; an answer that comes sooner simply finds it half done and waits for it, as it would have without
warming up."""

from __future__ import annotations

import logging
import signal
import threading

from funasr_subs import plugins
from funasr_subs.cues import lexicon

log = logging.getLogger(__name__)

_lock = threading.Lock()
_started: set[bool] = set()  # the ``chinese`` values a warm-up was started for


def _warm(chinese: bool, listen: bool) -> None:
    # a signal must reach the main thread: one delivered to this thread would not wake a main thread blocked in a
    # wait (the watch daemon's), whose handler would then run late
    if hasattr(signal, "pthread_sigmask"):  # not on Windows, which has no such delivery (nor the problem)
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        if listen:
            import funasr_subs.media.level  # noqa: F401  (numpy)
        if chinese:
            lexicon.load()
        plugins.load_plugins()
    except Exception:  # the first real use does the same again and reports what went wrong there
        log.debug("warming up failed", exc_info=True)


def warm_up(*, chinese: bool, listen: bool = False) -> None:
    """Start the background loading (once per process for each kind of job; later calls do nothing)."""
    with _lock:
        if chinese in _started or (not chinese and _started):
            return
        _started.add(chinese)
    threading.Thread(target=_warm, args=(chinese, listen), name="funasr-subs-warmup", daemon=True).start()
