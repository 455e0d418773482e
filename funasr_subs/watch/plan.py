"""What ``watch --once`` would do now, without doing it (``--dry-run``): every media file below the watched folders
and every job already in the queue, each with the decision the daemon would take and why."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from funasr_subs import pipeline
from funasr_subs.config import Settings
from funasr_subs.watch.scan import folder_ignored, iter_media
from funasr_subs.watch.state import Job, media_key

Decision = Literal["process", "skip"]


@dataclass(frozen=True)
class Step:
    path: Path
    decision: Decision
    reason: str


def plan(
    roots: tuple[Path, ...], suffixes: frozenset[str], settings: Settings, jobs: Mapping[Path, Job]
) -> Iterator[Step]:
    """The scan's decisions (as the daemon's backlog scan takes them), then the queued jobs found nowhere below the
    roots (queued by a hook or a webhook). ``jobs``: the queue, by media key."""
    seen: set[Path] = set()
    for root in roots:
        if folder_ignored(root, root):
            continue
        for path, st in sorted(iter_media(root, suffixes), key=lambda item: item[0]):
            key = media_key(path)
            seen.add(key)
            yield _decide(path, key, (st.st_size, st.st_mtime_ns), settings, jobs.get(key))
    for key, job in jobs.items():
        if key not in seen and job.state == "queued":
            yield Step(key, "process", f"queued by {job.source}")


def _decide(path: Path, key: Path, stamp: tuple[int, int], settings: Settings, job: Job | None) -> Step:
    if job is not None and (job.size, job.mtime_ns) == stamp:
        if job.state == "failed":
            return Step(path, "skip", f"failed before: {job.last_error} (funasr-subs retry to try again)")
        if job.state == "done":
            return Step(path, "skip", f"done before{': ' + job.note if job.note else ''} (the queue remembers it)")
        if job.state == "running":
            return Step(path, "process", "was running when the daemon stopped: it is done again")
        return Step(path, "process", f"waiting in the queue (queued by {job.source})")
    reason = pipeline.skip_reason(key, settings)
    if reason is not None:
        return Step(path, "skip", reason)
    return Step(path, "process", "new or changed" if job is None else f"changed since it was {job.state}")
