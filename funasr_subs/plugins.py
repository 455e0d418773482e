"""Plugin events through ``importlib.metadata`` entry points (group ``funasr_subs.plugins``).

Each entry point names a module or an object (``"pkg.mod"`` or ``"pkg.mod:obj"``; a class is instantiated with no
arguments). The loaded object may define either or both hooks:

- ``on_subtitle_written(result)`` — after the subtitles and the sidecar of one media file were written;
- ``on_failure(media_path, error)`` — after a job failed (``error`` is the exception).

Plugins are loaded once, lazily and thread-safely, on the first event. A plugin that fails to load or whose hook
raises is logged with its name and the reason and skipped: the job's outcome never depends on a plugin. Hooks run in
the thread that ran the job, so with ``jobs > 1`` they can run concurrently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # importlib.metadata (~30 ms) is imported when plugins are first looked for, not with the pipeline
    import importlib.metadata

    from funasr_subs.model import Result

log = logging.getLogger(__name__)

#: The entry-point group plugins register under.
GROUP = "funasr_subs.plugins"

WRITTEN_HOOK = "on_subtitle_written"
FAILURE_HOOK = "on_failure"


class SubtitleWrittenHook(Protocol):
    """Signature of ``on_subtitle_written``."""

    def __call__(self, result: Result, /) -> object: ...


class FailureHook(Protocol):
    """Signature of ``on_failure``."""

    def __call__(self, media_path: Path, error: BaseException, /) -> object: ...


@dataclass(frozen=True)
class Plugin:
    """One loaded plugin: its entry-point name, where it came from, and the hooks it defines (None when absent)."""

    name: str
    value: str
    on_subtitle_written: Callable[[Result], object] | None = None
    on_failure: Callable[[Path, BaseException], object] | None = None


_lock = threading.Lock()
_loaded: tuple[Plugin, ...] | None = None


def _hook(name: str, obj: object, attr: str) -> Callable[..., object] | None:
    hook = getattr(obj, attr, None)
    if hook is None:
        return None
    if not callable(hook):
        log.warning("plugin %r: %s is not callable (%s); ignoring it", name, attr, type(hook).__name__)
        return None
    return hook  # type: ignore[no-any-return]


def load_one(entry_point: importlib.metadata.EntryPoint) -> Plugin | None:
    """Load one entry point into a Plugin, or log why it cannot be used and return None."""
    name = entry_point.name
    try:  # a broken plugin must never break a job: any failure here only skips it
        obj: Any = entry_point.load()
        if isinstance(obj, type):
            obj = obj()
        plugin = Plugin(
            name=name,
            value=entry_point.value,
            on_subtitle_written=_hook(name, obj, WRITTEN_HOOK),
            on_failure=_hook(name, obj, FAILURE_HOOK),
        )
    except Exception as exc:
        log.warning("plugin %r (%s) could not be loaded and is skipped: %s", name, entry_point.value, _reason(exc))
        log.debug("plugin %r load failure", name, exc_info=True)
        return None
    if plugin.on_subtitle_written is None and plugin.on_failure is None:
        log.warning(
            "plugin %r (%s) defines neither %s nor %s; ignoring it", name, plugin.value, WRITTEN_HOOK, FAILURE_HOOK
        )
        return None
    log.debug("plugin %r loaded from %s", name, plugin.value)
    return plugin


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    import importlib.metadata

    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name in seen:  # the same distribution found twice on sys.path: keep the first, like importing does
            continue
        seen.add(ep.name)
        yield ep


def load_plugins() -> tuple[Plugin, ...]:
    """Every usable plugin, loaded on the first call and cached (thread-safe)."""
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                eps = sorted(_entry_points(), key=lambda ep: ep.name)
            except Exception as exc:
                log.warning("plugins could not be listed and are skipped: %s", _reason(exc))
                eps = []
            _loaded = tuple(p for p in (load_one(ep) for ep in eps) if p is not None)
        return _loaded


def reset_plugins() -> None:
    """Forget the loaded plugins so the next event discovers them again (after installing one, or in tests)."""
    global _loaded
    with _lock:
        _loaded = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _call(plugin: Plugin, hook_name: str, hook: Callable[..., object], *args: object) -> None:
    try:
        hook(*args)
    except Exception as exc:
        log.warning("plugin %r: %s raised and was skipped: %s", plugin.name, hook_name, _reason(exc))
        log.debug("plugin %r %s traceback", plugin.name, hook_name, exc_info=True)


def notify_written(result: Result) -> None:
    """Tell every plugin that subtitles were written. Never raises."""
    for plugin in load_plugins():
        if plugin.on_subtitle_written is not None:
            _call(plugin, WRITTEN_HOOK, plugin.on_subtitle_written, result)


def notify_failed(media: Path, error: BaseException) -> None:
    """Tell every plugin that a job failed. Never raises."""
    for plugin in load_plugins():
        if plugin.on_failure is not None:
            _call(plugin, FAILURE_HOOK, plugin.on_failure, Path(media), error)
