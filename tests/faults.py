"""The fault harness: what a hostile environment does to the tool, as small reusable pieces.

- :class:`StallingServer`: completes the websocket handshake, then never reads again (a frozen server process).
- :data:`HOSTILE_NAMES`: legal Linux file names that break naive code (invalid UTF-8, newline, 255 bytes, ``-x``).
- :func:`make_fifo`, :func:`make_symlink_loop`: files a naive ``open()`` or ``resolve()`` hangs or crashes on.
- :data:`DAMAGED_SIDECARS`: sidecar texts that overflow, recurse or lie.
- :func:`corrupt_database`: a state database that SQLite refuses.
- :func:`small_tmpfs`: a 1 MiB tmpfs (disk full) when the tests run as root; ``pytest.skip`` with the reason otherwise.
- :func:`in_own_mounts`: a shell script run in a mount namespace of its own, where it may mount a tiny tmpfs (a really
  full disk, a read-only file system) without root.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class StallingServer:
    """A TCP server on 127.0.0.1 that answers the websocket upgrade (HTTP 101) and then never reads again.

    Its receive buffer is made small, so a client's socket buffers fill after a few MiB and every send blocks,
    exactly as with a FunASR server process that froze. ``accepted`` is set once a handshake was answered.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.accepted = threading.Event()
        self.handshakes = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stalling-server", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            try:
                self._handshake(conn)
            except OSError:
                continue

    def _handshake(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:  # read the upgrade request only, never a byte after it
            piece = conn.recv(1)
            if not piece:
                return
            request += piece
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID.encode()).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Server: WebSocket++/0.8.2\r\n"  # a frozen C++ server: websocketpp names itself so
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.handshakes += 1
        self.accepted.set()

    def __enter__(self) -> StallingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


#: Names that are legal on Linux and have broken code: each is a file name (bytes), not a path.
HOSTILE_NAMES: dict[str, bytes] = {
    "invalid-utf8": b"bad\xffname.m4a",
    "newline": b"two\nlines.m4a",
    "255-bytes": ("长" * 80 + "x" * 11 + ".m4a").encode(),  # 240 + 11 + 4 = 255 bytes, the limit of ext4/tmpfs
    "leading-dash": b"-rf --overwrite.m4a",
}


def fs_name(raw: bytes) -> str:
    """The ``str`` Python uses for a bytes file name (undecodable bytes as surrogate escapes)."""
    return os.fsdecode(raw)


def make_fifo(path: Path) -> Path:
    """A named pipe at ``path``: ``open()`` for reading blocks until a writer comes, which never happens."""
    os.mkfifo(path)
    return path


def make_symlink_loop(folder: Path, a: str = "a.mkv", b: str = "b.mkv") -> tuple[Path, Path]:
    """``a → b → a``: resolving either raises "Symlink loop" (or ELOOP)."""
    first, second = folder / a, folder / b
    first.symlink_to(second.name)
    second.symlink_to(first.name)
    return first, second


def deep_json(depth: int = 200_000) -> str:
    return '{"reply": ' + "[" * depth + "]" * depth + "}"


#: Sidecar texts that once crashed the daemon's start-up scan, ``transcribe`` or ``retime``.
DAMAGED_SIDECARS: dict[str, str] = {
    "infinite-offset": '{"reply": {"text": "x"}, "audio": {"offset_ms": Infinity}}',
    "nan-duration": '{"reply": {"text": "x"}, "audio": {"duration_ms": NaN}}',
    "huge-size": '{"reply": {"text": "x"}, "media": {"name": "a.mkv", "size": 1e400, "mtime_ns": 1}}',
    "deep-nesting": deep_json(),
    "not-utf8": '{"reply": {"text": "\xff"}}',
    "name-elsewhere": '{"reply": {"text": "x"}, "media": {"name": "../escaped/evil.mkv"}}',
}


def corrupt_database(path: Path, kind: str) -> None:
    """Overwrite ``path`` so SQLite says "file is not a database" (``garbage``) or "malformed" (``malformed``)."""
    if kind == "garbage":
        path.write_bytes(b"this is not sqlite at all\n" * 400)
        return
    data = bytearray(path.read_bytes())
    for i in range(100, len(data), 3):  # keep the header, scramble the pages
        data[i] = (data[i] * 7 + 13) & 0xFF
    path.write_bytes(bytes(data))


@contextlib.contextmanager
def small_tmpfs(mountpoint: Path, size: str = "1m") -> Iterator[Path]:
    """A ``size`` tmpfs mounted at ``mountpoint`` (disk-full tests); skips with the reason when that is impossible."""
    if os.geteuid() != 0:
        pytest.skip("disk-full test needs root to mount a small tmpfs (mount -t tmpfs -o size=1m)")
    if shutil.which("mount") is None:
        pytest.skip("disk-full test needs the mount command")
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


def in_own_mounts(script: str, env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``sh`` ``script`` in a user and mount namespace of its own (``unshare -rm``): there it may mount a tiny
    tmpfs (``mount -t tmpfs -o size=256k tmpfs DIR``) to fill, or remount one read-only, without root and unseen by
    the rest of the machine. ``$EXE`` is the installed command. Skips with the reason where no namespace may be made.
    """
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare (a mount namespace of its own for a tiny tmpfs)")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"this machine allows no user/mount namespace here: {probe.stderr.strip()}")
    return subprocess.run(
        ["unshare", "-rm", "sh", "-u", "-c", script],
        capture_output=True,
        text=True,
        errors="replace",
        env={**env, "EXE": command()[0]},
        timeout=timeout,
        check=False,
    )


# --- running the installed command -------------------------------------------------------------------------------
def command() -> list[str]:
    """The ``funasr-subs`` script installed beside this interpreter (the venv's: not another tree's on PATH)."""
    beside = Path(sys.executable).parent / "funasr-subs"
    exe = str(beside) if beside.exists() else shutil.which("funasr-subs")
    if exe is None:
        pytest.fail("the funasr-subs command is not installed: pip install -e '.[dev]'")
    return [exe]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment without the user's FUNASR_SUBS_* settings or config file; TMPDIR inside the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env["XDG_CONFIG_HOME"] = str(home / "no-config-here")
    env["XDG_STATE_HOME"] = str(home / "state-home")
    env.update(extra)
    return env


def run_cli(*args: str | bytes, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *args], capture_output=True, text=True, errors="replace", env=env, timeout=timeout, check=False
    )


def popen_cli(*args: str | bytes, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
    )


def descendants(pid: int) -> list[int]:
    """Child processes of every thread of ``pid`` (Linux /proc)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                out += [int(k) for k in fh.read().split()]
    return out


def ffmpeg_on(path: Path, *marks: str) -> list[str]:
    """The ffmpeg processes running on ``path`` (whose command lines also hold ``marks``), read from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = argv and argv[0].endswith(b"ffmpeg") and any(str(path).encode() in a for a in argv)
        if ours and all(mark.encode() in argv for mark in marks):
            found.append(pid)
    return found


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``proc``, killed and collected on the way out if it is still running (a test that failed half-way)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def assert_interrupted(proc: subprocess.Popen[str], err: str) -> None:
    """``proc`` ended as an interrupted command should: exit 130, says so, no traceback."""
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err


def blocked_writing_a_pipe(pid: int) -> bool:
    """True when a child of ``pid`` (our ffmpeg) sleeps in a pipe write: nobody reads its output any more."""
    for child in descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{child}/wchan", encoding="ascii") as fh:
            if "pipe_write" in fh.read():
                return True
    return False


def make_long_audio(path: Path, seconds: int = 300) -> Path:
    """A small FLAC holding ``seconds`` of tone: far more PCM (32 KB/s) than any socket buffer holds."""
    source = ["-f", "lavfi", "-i", "sine=f=440:r=16000", "-t", str(seconds)]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *source, "-ac", "1", "-c:a", "flac", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def run_on_terminal(argv: list[str | bytes], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (progress bars on); returns the exit code and what the terminal got."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(chunks).decode("utf-8", "replace")


class StderrLines:
    """Reads a running process's stderr line by line in a thread, so a test can wait for a line to appear."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, name="stderr-lines", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The first line containing ``text``; AssertionError (with everything read) after ``timeout``."""
        with self._cond:
            found = self._cond.wait_for(lambda: any(text in line for line in self.lines) or "<eof>" in self.lines,
                                        timeout)  # fmt: skip
            match = next((line for line in self.lines if text in line), None)
            if not found or match is None:
                raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines))
            return match

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


def with_inotify_watch_limit(limit: int, argv: list[str]) -> list[str]:
    """``argv`` run in a new user namespace whose inotify watch limit is ``limit`` (leaves the machine's alone);
    skips the test where user namespaces are not available."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("the inotify-limit test needs unshare (util-linux) for a private watch limit")
    probe = subprocess.run([unshare, "-Ur", "sh", "-c", f"echo {limit} > /proc/sys/user/max_inotify_watches"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot set a private inotify limit in a user namespace here: {probe.stderr.strip()}")
    script = f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$@"'
    return [unshare, "-Ur", "sh", "-c", script, "sh", *argv]


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait for ``proc`` to end and return its stderr; if it does not end in time, make it print every thread's
    stack (faulthandler, enabled by PYTHONFAULTHANDLER=1 in its environment) and fail with that."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s; its threads:\n{err[-6000:]}") from None
