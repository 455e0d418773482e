"""``funasr-subs serve`` as a real process: bind rules at start-up, config file, health, SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from funasr_subs.cli import main
from tests.servicekit import request
from tests.test_service_http import needs_alias

# this install's script (next to the interpreter) first: a `funasr-subs` on PATH may belong to another tree
_HERE = Path(sys.executable).with_name("funasr-subs")
EXE = str(_HERE) if _HERE.exists() else shutil.which("funasr-subs")
COMMAND = [EXE] if EXE else [sys.executable, "-m", "funasr_subs"]
TOKEN = "cli-test-token-0123456789"


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env


def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*COMMAND, "serve", *argv], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    proc.wait(10)
    raise AssertionError("serve did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(10)
    if proc.stderr:
        proc.stderr.close()
    return code


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    argv = ["--port", "0", "--root", str(tmp_path / "lib"), "--state-dir", str(tmp_path / "state")]
    proc, url = start(argv, clean_env(tmp_path))
    try:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        assert request((host, int(port)), "GET", "/health").status == 200
        status = request((host, int(port)), "GET", "/status")
        assert status.status == 200 and "version" in status.json() and "counts" not in status.json()
    finally:
        code = stop(proc)
    assert code == 0


def test_serve_refuses_a_network_bind_without_token(tmp_path: Path) -> None:
    argv = ["serve", "--host", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path / "state")]
    proc = subprocess.run([*COMMAND, *argv], env=clean_env(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "binding 0.0.0.0 exposes the service to the network, so a token is required" in proc.stderr


@needs_alias
def test_serve_on_another_loopback_address_needs_no_token(tmp_path: Path) -> None:
    """127.0.0.2 is loopback too: only this machine reaches it, so it is treated like 127.0.0.1."""
    argv = ["--host", "127.0.0.2", "--port", "0", "--state-dir", str(tmp_path / "state")]
    proc, url = start(argv, clean_env(tmp_path))
    try:
        assert url.startswith("http://127.0.0.2:")
        assert request(("127.0.0.2", int(url.rsplit(":", 1)[1])), "GET", "/status").status == 200
    finally:
        assert stop(proc) == 0


@needs_alias
def test_serve_reads_the_serve_table(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'lang = "zh"\n[serve]\nhost = "127.0.0.2"\nport = 0\ntoken = "{TOKEN}"\nroots = ["{tmp_path / "lib"}"]\n'
        f'state_dir = "{tmp_path / "state"}"\n',
        encoding="utf-8",
    )
    proc, url = start(["--config", str(config)], clean_env(tmp_path))
    try:
        address = ("127.0.0.2", int(url.rsplit(":", 1)[1]))
        assert url.startswith("http://127.0.0.2:")
        public = request(address, "GET", "/status")  # Bazarr's Test Connection: the version, nothing else
        assert public.status == 200 and set(public.json()) == {"version", "service"}
        assert request(address, "GET", "/status", headers={"X-Api-Key": "wrong-token-0123456789"}).status == 401
        full = request(address, "GET", "/status", headers={"X-Api-Key": TOKEN})
        assert full.status == 200 and full.json()["counts"]["queued"] == 0
    finally:
        assert stop(proc) == 0


def test_bad_root_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--port", "0", "--root", str(tmp_path / "nope"), "--state-dir", str(tmp_path / "s")])
    assert code == 2
    assert "not an existing folder" in capsys.readouterr().err
