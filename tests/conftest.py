"""Shared fixtures: the FunASR test server, media folders, TLS certificates, and a leaked-thread check."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_subs import speedbook
from tests.funasr_server import FunasrTestServer, make_expired_cert, make_self_signed_cert, server_ssl_context

# A suite started as a background job of a script (`pytest &`, as CI runners may) has SIGINT ignored, and every
# command the tests start would inherit that: the Ctrl-C tests would then test nothing. Run as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a non-daemon thread running (it would hang the interpreter at exit)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for thread in leaked:
        thread.join(timeout=5)  # threads already finishing get a grace period, not a sleep
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test leaked non-daemon threads: {still}"


@pytest.fixture(autouse=True)
def own_state_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own default state folder (the server-speed book lives there), never the user's."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(folder))
    monkeypatch.setattr(speedbook, "_folder", None)  # a watch daemon run in-process points it at its --state-dir
    return folder / "funasr-subs"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """In-process ``main([...])`` calls install handlers on the root logger (to a stderr pytest closes afterwards):
    take them away again so a later test's background thread never logs to a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture
def funasr_server() -> Iterator[FunasrTestServer]:
    """A started FunASR protocol test server on ws://127.0.0.1:<port>; stopped after the test."""
    server = FunasrTestServer()
    with server:
        yield server


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certfile, keyfile) of a self-signed certificate for 127.0.0.1/localhost, made once per session."""
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def expired_tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certfile, keyfile) like the FunASR image's: self-signed, CN=alibaba, expired on 2024-06-17."""
    return make_expired_cert(tmp_path_factory.mktemp("tls-expired"))


@pytest.fixture
def funasr_tls_server(tls_cert: tuple[Path, Path]) -> Iterator[FunasrTestServer]:
    """Like ``funasr_server`` but serving wss:// with the self-signed ``tls_cert``."""
    server = FunasrTestServer(ssl_context=server_ssl_context(*tls_cert))
    with server:
        yield server


@pytest.fixture
def tmp_media_dir(tmp_path: Path) -> Path:
    """An empty folder for generated media (its name has a space and non-ASCII, as real libraries do)."""
    folder = tmp_path / "media dir é"
    folder.mkdir()
    return folder


@pytest.fixture
def funasr_expired_tls_server(expired_tls_cert: tuple[Path, Path]) -> Iterator[FunasrTestServer]:
    """A wss:// test server presenting the expired self-signed certificate (as the FunASR docker image does)."""
    server = FunasrTestServer(ssl_context=server_ssl_context(*expired_tls_cert))
    with server:
        yield server
