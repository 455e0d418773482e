"""The background warm-up (word segmenter, plugins, numpy for speech activity) loaded while ffmpeg starts and the
server works, without taking signals."""

from __future__ import annotations

import signal
import subprocess
import sys

CHILD = r"""
import signal, sys, threading, time
from funasr_subs import plugins, warmup
from funasr_subs.cues import lexicon

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
numpy_before = "funasr_subs.media.level" in sys.modules
warmup.warm_up(chinese=True, listen=True)
warmup.warm_up(chinese=True)  # once per process
print(sum(t.name == "funasr-subs-warmup" for t in threading.enumerate()), flush=True)
sys.stdin.readline()  # the parent sends SIGTERM while the dictionary loads
began = time.monotonic()
stop.wait(60)
print(f"{time.monotonic() - began:.1f}", flush=True)
for t in threading.enumerate():
    if t.name == "funasr-subs-warmup":
        t.join(60)
print(lexicon._JIEBA is not None, plugins._loaded is not None, not numpy_before and "numpy" in sys.modules, flush=True)
"""


def test_warm_up_loads_what_the_cues_need_and_leaves_signals_to_the_main_thread() -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline().strip() == "1"  # one thread, however often it is asked
    proc.send_signal(signal.SIGTERM)
    proc.stdin.write("\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    waited, loaded = out.splitlines()
    assert float(waited) < 30  # the handler ran in the main thread and woke its wait (not after the 60 s bound)
    assert loaded == "True True True"  # the dictionary, the plugins, numpy for the speech level


MASK_CHILD = r"""
import signal, threading, time
from funasr_subs import warmup
from funasr_subs.cues import lexicon

gate = threading.Event()
lexicon.load = lambda: gate.wait(30)  # hold the warm-up thread where the dictionary would load
warmup.warm_up(chinese=True)
thread = next(t for t in threading.enumerate() if t.name == "funasr-subs-warmup")
blocked = False
deadline = time.monotonic() + 30
while not blocked and time.monotonic() < deadline:
    with open(f"/proc/self/task/{thread.native_id}/status") as fh:
        mask = int(next(line for line in fh if line.startswith("SigBlk:")).split()[1], 16)
    blocked = all(mask >> (int(s) - 1) & 1 for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    if not blocked:
        time.sleep(0.01)
gate.set()
thread.join(30)
print(blocked)
"""


def test_the_warm_up_thread_blocks_the_signals_the_main_thread_handles() -> None:
    done = subprocess.run([sys.executable, "-c", MASK_CHILD], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
