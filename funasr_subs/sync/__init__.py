"""Re-time an existing subtitle to the speech: by its text where it matches the recognised text, else by the pattern
of cue and speech intervals (pure code: no I/O; the command is funasr_subs/commands/sync.py)."""

from __future__ import annotations

from funasr_subs.sync.core import Method, MethodChoice, Placement, SyncResult, sync
from funasr_subs.sync.timemap import Piece, TimeMap

__all__ = ["Method", "MethodChoice", "Piece", "Placement", "SyncResult", "TimeMap", "sync"]
