"""OBS Studio script: when a recording stops, make its subtitles with funasr-subs in the background.

Load it in OBS with Tools → Scripts → "+". OBS's embedded Python is not the Python funasr-subs is installed in, so
this script never imports funasr_subs: it runs the installed ``funasr-subs transcribe`` program (argv list, no
shell) in a worker thread, one recording at a time, and reports in the script log (Tools → Scripts → Script Log).
Works with the Python 3.8+ that OBS 29+ loads; nothing here blocks OBS's own threads.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import obspython as obs

DEFAULT_SERVER = "ws://127.0.0.1:10095"
PROGRAM = "funasr-subs"

# How "the recording is finished" is decided: the size and mtime stay the same for STABLE_POLLS checks POLL_S apart,
# and the file opens for reading. OBS may still be writing the index (mp4/mov) or remuxing after the stop event.
POLL_S = 1.0
STABLE_POLLS = 3
FINAL_TIMEOUT_S = 600.0
#: How often queued log lines are written to OBS's script log (from OBS's own timer thread).
LOG_FLUSH_MS = 250


class Config(NamedTuple):
    """The script's settings (the properties shown in OBS)."""

    enabled: bool = True
    executable: str = ""  # "" = find funasr-subs on PATH and in the usual install folders
    server: str = DEFAULT_SERVER
    insecure: bool = False
    formats: str = "srt"
    language: str = "zh"
    hotwords_file: str = ""


# --------------------------------------------------------------------------------------------------------------
# Pure helpers: locating the program and building its argument list.


def _candidates(configured: str) -> list[str]:
    names = [PROGRAM + ".exe", PROGRAM] if os.name == "nt" else [PROGRAM]
    if configured:
        path = os.path.expanduser(configured)
        if not os.path.isdir(path):
            return [path]
        return [os.path.join(path, sub, name) for sub in ("", "bin", "Scripts") for name in names]
    found = shutil.which(PROGRAM)
    home = os.path.expanduser("~")
    usual = [
        os.path.join(home, ".local", "bin", PROGRAM),
        os.path.join("/opt", "homebrew", "bin", PROGRAM),
        os.path.join("/usr", "local", "bin", PROGRAM),
        os.path.join(os.environ.get("APPDATA", home), "Python", "Scripts", PROGRAM + ".exe"),
    ]
    return ([found] if found else []) + usual


def find_executable(configured: str) -> str | None:
    """The funasr-subs program to run: the configured file (or the program inside a configured folder), else PATH."""
    for path in _candidates(configured):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def build_command(executable: str, cfg: Config, media: str) -> list[str]:
    """The argv list for one recording (no shell ever sees it)."""
    cmd = [executable, "transcribe", "--server", cfg.server.strip() or DEFAULT_SERVER]
    if cfg.insecure:
        cmd.append("--insecure")
    formats = ",".join(f.strip() for f in cfg.formats.split(",") if f.strip())
    if formats:
        cmd += ["--format", formats]
    cmd += ["--lang", cfg.language.strip()]
    if cfg.hotwords_file.strip():
        cmd += ["--hotwords", os.path.expanduser(cfg.hotwords_file.strip())]
    cmd.append(os.path.abspath(media))
    return cmd


def child_environment() -> dict[str, str]:
    """OBS's environment minus the variables that point a child Python at OBS's own interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def error_line(text: str) -> str:
    """The line that explains a funasr-subs failure: its last ``error:`` line (prefix removed), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [
        line.split("error:", 1)[1].strip() for line in lines if line.startswith(("error:", "funasr-subs: error:"))
    ]
    return errors[-1] if errors else (lines[-1] if lines else "")


def done_line(name: str, detail: str, seconds: float) -> str:
    """``rec.mkv: wrote rec.zh.srt (12 cues) in 41 s`` from funasr-subs' ``done: ... -> FILES (N cues, ...)`` line."""
    found = re.search(r" -> (.+) \((\d+ cues?)", detail)
    if found:
        return f"{name}: wrote {found.group(1)} ({found.group(2)}) in {seconds:.0f} s"
    return f"{name}: {detail}" if detail.startswith("skipped") else f"{name}: subtitles done in {seconds:.0f} s"


def last_line(text: str) -> str:
    """The last non-empty line of a program's output."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _opens(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError:
        return False
    return True


def wait_until_final(
    path: str,
    stop: Any,
    *,
    poll_s: float | None = None,
    stable_polls: int | None = None,
    timeout_s: float | None = None,
) -> bool:
    """True once ``path`` is non-empty, unchanged for ``stable_polls`` checks and readable; False on timeout or stop.

    ``stop`` is a ``threading.Event``: its ``wait(poll_s)`` is the pause between checks, so unloading interrupts it.
    """
    poll = POLL_S if poll_s is None else poll_s
    needed = STABLE_POLLS if stable_polls is None else stable_polls
    deadline = time.monotonic() + (FINAL_TIMEOUT_S if timeout_s is None else timeout_s)
    last: tuple[int, int] | None = None
    same = 0
    while True:
        sig = _signature(path)
        same = same + 1 if sig is not None and sig == last and sig[0] > 0 else 0
        last = sig
        if same >= needed and _opens(path):
            return True
        if time.monotonic() > deadline or stop.wait(poll):
            return False


# --------------------------------------------------------------------------------------------------------------
# The worker: one thread, one recording at a time (FunASR servers handle concurrent files badly).


class Worker:
    """Runs funasr-subs for queued recordings in a background thread; log lines go to a queue OBS drains."""

    def __init__(self, log: Callable[[int, str], None]) -> None:
        self._log = log
        self._jobs: queue.Queue[tuple[str, Config] | None] = queue.Queue()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._pending = 0
        self._proc: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._run, name="funasr-subs-obs", daemon=True)
        self._thread.start()

    def submit(self, media: str, cfg: Config) -> None:
        with self._cond:
            self._pending += 1
        self._jobs.put((media, cfg))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True when every submitted recording has been handled (within ``timeout`` seconds)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 3.0) -> None:
        """Stop waiting, end a running funasr-subs (it leaves no partial files), and let the thread finish."""
        self._stop.set()
        with self._cond:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            try:
                self._process(*item)
            except Exception as exc:  # a bug here must not kill the worker for the next recording
                self._log(obs.LOG_ERROR, f"{os.path.basename(item[0])}: unexpected error: {exc!r}")
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _process(self, media: str, cfg: Config) -> None:
        name = os.path.basename(media)
        if self._stop.is_set():
            return
        executable = find_executable(cfg.executable)
        if executable is None:
            where = cfg.executable or "PATH"
            self._log(
                obs.LOG_ERROR,
                f"{name}: funasr-subs program not found in {where}: install funasr-subs and set "
                "'funasr-subs program' in this script's settings to its full path",
            )
            return
        if not wait_until_final(media, self._stop):
            if not self._stop.is_set():
                state = "does not exist" if _signature(media) is None else "kept changing"
                self._log(obs.LOG_ERROR, f"{name}: recording {state}; no subtitles made ({media})")
            return
        self._log(obs.LOG_INFO, f"{name}: making subtitles with {cfg.server}")
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                build_command(executable, cfg, media),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_environment(),
                encoding="utf-8",
                errors="replace",
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0,
            )
        except OSError as exc:
            self._log(obs.LOG_ERROR, f"{name}: cannot run {executable}: {exc.strerror or exc}")
            return
        with self._cond:
            self._proc = proc
            if self._stop.is_set():  # stop() ran between the check above and Popen: it could not see this process
                proc.terminate()
        try:
            out, err = proc.communicate()
        finally:
            with self._cond:
                self._proc = None
        if self._stop.is_set():
            self._log(obs.LOG_WARNING, f"{name}: stopped (script unloaded); no subtitles made")
        elif proc.returncode == 0:
            self._log(obs.LOG_INFO, done_line(name, last_line(err) or last_line(out), time.monotonic() - started))
        else:
            reason = error_line(err) or error_line(out) or f"exit code {proc.returncode}"
            self._log(obs.LOG_ERROR, reason if media in reason or name in reason else f"{name}: {reason}")


# --------------------------------------------------------------------------------------------------------------
# OBS glue: everything below runs on OBS's threads and returns at once.

_config = Config()
_worker: Worker | None = None
_messages: queue.Queue[tuple[int, str]] = queue.Queue()


def _queue_log(level: int, message: str) -> None:
    _messages.put((level, message))


def flush_log() -> None:
    """Write queued lines to the script log (an OBS timer calls this; background threads never call OBS)."""
    while True:
        try:
            level, message = _messages.get_nowait()
        except queue.Empty:
            return
        obs.script_log(level, message)


def read_config(settings: Any) -> Config:
    return Config(
        enabled=obs.obs_data_get_bool(settings, "enabled"),
        executable=obs.obs_data_get_string(settings, "executable"),
        server=obs.obs_data_get_string(settings, "server"),
        insecure=obs.obs_data_get_bool(settings, "insecure"),
        formats=obs.obs_data_get_string(settings, "formats"),
        language=obs.obs_data_get_string(settings, "language"),
        hotwords_file=obs.obs_data_get_string(settings, "hotwords_file"),
    )


def on_event(event: int) -> None:
    if event != obs.OBS_FRONTEND_EVENT_RECORDING_STOPPED or not _config.enabled or _worker is None:
        return
    try:
        path = obs.obs_frontend_get_last_recording()
    except Exception as exc:
        _queue_log(obs.LOG_ERROR, f"cannot ask OBS for the last recording (OBS 29 or later is needed): {exc}")
        return
    if not path:
        _queue_log(obs.LOG_WARNING, "recording stopped but OBS reported no file; nothing to subtitle")
        return
    _worker.submit(str(path), _config)


def wait_idle(timeout: float | None = None) -> bool:
    """True once every recording handed to the worker has been processed (used by tests and on unload)."""
    return _worker.wait_idle(timeout) if _worker is not None else True


def script_description() -> str:
    return (
        "<b>FunASR subtitles</b><br>When a recording stops, runs <code>funasr-subs transcribe</code> on it in the "
        "background and writes subtitles next to the file. Progress and errors appear in the Script Log."
    )


def script_defaults(settings: Any) -> None:
    defaults = Config()
    obs.obs_data_set_default_bool(settings, "enabled", defaults.enabled)
    obs.obs_data_set_default_string(settings, "executable", defaults.executable)
    obs.obs_data_set_default_string(settings, "server", defaults.server)
    obs.obs_data_set_default_bool(settings, "insecure", defaults.insecure)
    obs.obs_data_set_default_string(settings, "formats", defaults.formats)
    obs.obs_data_set_default_string(settings, "language", defaults.language)
    obs.obs_data_set_default_string(settings, "hotwords_file", defaults.hotwords_file)


def script_properties() -> Any:
    props = obs.obs_properties_create()
    obs.obs_properties_add_bool(props, "enabled", "Make subtitles when a recording stops")
    obs.obs_properties_add_text(props, "server", "FunASR server (ws:// or wss://)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_bool(props, "insecure", "Accept any TLS certificate (FunASR docker image)")
    obs.obs_properties_add_text(props, "formats", "Formats (srt, ass, vtt; comma-separated)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_text(
        props, "language", "Language tag in file names (zh → name.zh.srt)", obs.OBS_TEXT_DEFAULT
    )
    obs.obs_properties_add_path(
        props, "hotwords_file", "Hotwords file (optional)", obs.OBS_PATH_FILE, "Text files (*.txt);;All files (*.*)", ""
    )
    obs.obs_properties_add_path(
        props, "executable", "funasr-subs program (empty: search PATH)", obs.OBS_PATH_FILE, "All files (*)", ""
    )
    return props


def script_update(settings: Any) -> None:
    global _config
    _config = read_config(settings)
    if not _config.server.startswith(("ws://", "wss://")):
        _queue_log(obs.LOG_WARNING, f"server {_config.server!r} must start with ws:// or wss://")


def script_load(settings: Any) -> None:
    global _worker, _config
    _config = read_config(settings)
    _worker = Worker(_queue_log)
    obs.obs_frontend_add_event_callback(on_event)
    obs.timer_add(flush_log, LOG_FLUSH_MS)


def script_unload() -> None:
    global _worker
    obs.obs_frontend_remove_event_callback(on_event)
    obs.timer_remove(flush_log)
    worker, _worker = _worker, None
    if worker is not None:
        worker.stop()
    flush_log()
