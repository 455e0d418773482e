"""The ``on_done`` completion webhook: a real aiohttp receiver on 127.0.0.1, the real CLI and the real watch daemon."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from funasr_subs.cli import main
from funasr_subs.watch.daemon import WatchDaemon
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.tls_certs import make_self_signed_cert
from tests.watch_support import options, running, server_settings, wait_for

SECRET = "s3cret-token"


class Receiver:
    """An aiohttp server in its own thread that records every POST body; answers ``statuses`` in turn (then 200),
    and after :meth:`pause` keeps each caller waiting until :meth:`release` (a slow receiver)."""

    def __init__(self, statuses: tuple[int, ...] = (), ssl_context: ssl.SSLContext | None = None) -> None:
        self.statuses = list(statuses)
        self.calls: list[dict[str, Any]] = []
        self._open: asyncio.Event | None = None
        self.arrived = threading.Condition()
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="on-done-receiver", daemon=True)
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.arrived:
            self.calls.append({"body": body, "query": dict(request.query), "ctype": request.content_type})
            self.arrived.notify_all()
        assert self._open is not None
        await self._open.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._open = asyncio.Event()
        self._open.set()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook?token={SECRET}"

    def wait_for_calls(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.calls) >= n, timeout), f"{len(self.calls)} calls, not {n}"
            return list(self.calls)

    def pause(self) -> None:
        assert self._open is not None
        self._loop.call_soon_threadsafe(self._open.clear)

    def release(self) -> None:
        assert self._open is not None
        self._loop.call_soon_threadsafe(self._open.set)

    def __enter__(self) -> Receiver:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def receiving(*statuses: int, ssl_context: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    with Receiver(statuses, ssl_context) as receiver:
        yield receiver


def _bodies(calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(c["body"]["file"]).name: c["body"] for c in calls}


def test_every_finished_file_is_posted_with_its_outputs_and_status_through_the_cli(
    tmp_path: Path, funasr_server: FunasrTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_media(tmp_path / "talk.mp4", [(500, 900)], 2000)
    bad = make_corrupt_media(tmp_path / "broken.mp4", kind="garbled")
    with receiving() as receiver:
        code = main(["transcribe", "--server", funasr_server.url, "--format", "srt,lrc", "--on-done",
                     receiver.url(), "-vv", str(good), str(bad)])  # fmt: skip
        calls = receiver.wait_for_calls(2)
    assert code == 1  # one file failed; the notification of each was still made before the command returned
    bodies = _bodies(calls)
    assert bodies["talk.mp4"]["status"] == "done"
    assert bodies["talk.mp4"]["outputs"] == [str(tmp_path / "talk.zh.srt"), str(tmp_path / "talk.zh.lrc")]
    assert bodies["talk.mp4"]["sidecar"] == str(tmp_path / "talk.funasr.json") and bodies["talk.mp4"]["cues"] >= 1
    assert bodies["broken.mp4"]["status"] == "failed" and bodies["broken.mp4"]["outputs"] == []
    assert bodies["broken.mp4"]["reason"] and bodies["broken.mp4"]["error"].endswith("Error")
    assert all(c["ctype"] == "application/json" and c["query"] == {"token": SECRET} for c in calls)
    # the token reached the receiver but no log line and no sidecar
    logged = capsys.readouterr().err
    assert "on-done: POST http://127.0.0.1" in logged and SECRET not in logged
    assert SECRET not in (tmp_path / "talk.funasr.json").read_text(encoding="utf-8")


def test_a_receiver_answering_500_is_retried_until_it_takes_the_notification(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    media = make_media(tmp_path / "talk.mp4", [(500, 900)], 2000)
    with receiving(500, 503) as receiver:
        code = main(["transcribe", "--server", funasr_server.url, "--retry-backoff", "0.05", "--on-done",
                     receiver.url(), str(media)])  # fmt: skip
        calls = receiver.wait_for_calls(3)
    assert code == 0
    assert len(calls) == 3 and not receiver.statuses  # 500, 503, then 200: and no fourth call
    assert all(c["body"] == calls[0]["body"] for c in calls)


def test_a_receiver_that_is_down_costs_a_bounded_wait_and_a_warning_not_the_job(
    tmp_path: Path, funasr_server: FunasrTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    media = make_media(tmp_path / "talk.mp4", [(500, 900)], 2000)
    with receiving() as receiver:
        url = receiver.url()
    # the receiver has stopped: its port refuses connections
    code = main(["transcribe", "--server", funasr_server.url, "--retries", "1", "--retry-backoff", "0.05",
                 "--on-done", url, str(media)])  # fmt: skip
    assert code == 0 and (tmp_path / "talk.zh.srt").is_file()
    logged = capsys.readouterr().err
    ours = [line for line in logged.splitlines() if line.startswith("on-done: POST")]
    assert len(ours) == 2 and "retrying in 0.05 s" in ours[0] and "failed after 2 attempts" in ours[1]
    assert SECRET not in logged


def test_tls_is_verified_unless_insecure(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    media = make_media(tmp_path / "talk.mp4", [(500, 900)], 2000)
    with receiving(ssl_context=context) as receiver:
        base = ["transcribe", "--server", funasr_server.url, "--on-done", receiver.url("https"), "--overwrite"]
        assert main([*base, "--retries", "0", str(media)]) == 0
        assert receiver.calls == []  # a self-signed certificate: refused, never sent
        assert main([*base, "--insecure", str(media)]) == 0
        assert main([*base, "--ca-file", str(cert), str(media)]) == 0
        calls = receiver.wait_for_calls(2)
    assert [c["body"]["status"] for c in calls] == ["done", "done"]


def test_a_slow_receiver_never_delays_the_watch_daemons_next_file(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    with receiving() as receiver:
        receiver.pause()  # every call waits until the test lets it answer
        settings = server_settings(funasr_server.url, on_done=receiver.url())
        with running(WatchDaemon(options((root,), state, jobs=1), settings)):
            make_media(root / "one.mkv", [(500, 800)], 2000)
            receiver.wait_for_calls(1)  # the first notification is being held...
            make_media(root / "two.mkv", [(500, 800)], 2000)
            (root / "three.zh.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\n字\n", encoding="utf-8")
            make_media(root / "three.mkv", [(500, 800)], 2000)
            # ...while the daemon goes on with the next files
            wait_for(lambda: (root / "two.zh.srt").is_file(), what="the second file's subtitle")
            assert len(receiver.calls) == 1
            receiver.release()
            calls = receiver.wait_for_calls(3)
    bodies = _bodies(calls)
    assert [bodies[n]["status"] for n in ("one.mkv", "two.mkv", "three.mkv")] == ["done", "done", "skipped"]
    assert "three.zh.srt exists" in bodies["three.mkv"]["reason"]


def test_the_url_is_checked_where_it_is_given_and_shown_without_its_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    media = make_media(tmp_path / "talk.mp4", [(500, 900)], 2000)
    assert main(["transcribe", "--on-done", "ftp://example.org/x", str(media)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--on-done" in err and "http:// or https://" in err
    monkeypatch.setenv("FUNASR_SUBS_ON_DONE", f"https://me:pw@ntfy.example.org/subs?auth={SECRET}")
    assert main(["config"]) == 0
    shown = capsys.readouterr().out
    assert 'on_done = "https://***@ntfy.example.org/subs?***"' in shown and SECRET not in shown
    config = tmp_path / "config.toml"
    config.write_text('on_done = "http://"\n', encoding="utf-8")
    monkeypatch.delenv("FUNASR_SUBS_ON_DONE")
    assert main(["config", "--config", str(config)]) == 2
    assert "on-done must be an http:// or https:// URL" in capsys.readouterr().err
    config.write_text('[serve]\non_done = "http://ntfy/subs"\n', encoding="utf-8")  # where media servers go
    assert main(["config", "--config", str(config)]) == 2
    assert "'on_done' is not a [serve] setting but a top-level one" in capsys.readouterr().err


def test_the_payload_is_plain_json_with_absolute_paths(tmp_path: Path) -> None:
    from funasr_subs.actions.webhook import payload, shown_url

    body = payload(Path("a b.mp4"), "skipped", reason="up to date")
    assert json.loads(json.dumps(body)) == body
    assert Path(body["file"]).is_absolute() and body["outputs"] == [] and body["sidecar"] is None
    assert shown_url("http://[::1]:8080/x?k=v") == "http://[::1]:8080/x?***"


def test_a_full_queue_drops_the_newest_notification_and_never_blocks() -> None:
    from funasr_subs.actions.webhook import Delivery, Sender

    sender = Sender(max_pending=1)
    with receiving() as receiver:
        receiver.pause()

        def delivery(name: str) -> Delivery:
            return Delivery(url=receiver.url(), body=json.dumps({"file": name}).encode(), media=name, retries=0)

        assert sender.submit(delivery("one"))
        receiver.wait_for_calls(1)  # "one" is in flight, held by the receiver
        assert sender.submit(delivery("two"))  # waits in the queue
        assert not sender.submit(delivery("three"))  # the queue is full: dropped at once
        assert sender.drain(timeout=0.2) == 2  # a bounded wait, and how many are still on their way
        receiver.release()
        assert sender.drain() == 0
        calls = receiver.wait_for_calls(2)
    assert [c["body"]["file"] for c in calls] == ["one", "two"]


def test_an_interrupted_run_waits_for_no_notification() -> None:
    from funasr_subs.actions.webhook import Delivery, Sender

    sender = Sender()
    with receiving() as receiver:
        receiver.pause()
        for name in ("one", "two"):
            sender.submit(Delivery(url=receiver.url(), body=b'{"file": "x"}', media=name, retries=0))
        receiver.wait_for_calls(1)
        sender.abandon()  # Ctrl-C: "two" is never sent, and nothing is waited for
        receiver.release()
        assert sender.drain() == 0
        sender.submit(Delivery(url=receiver.url(), body=b'{"file": "y"}', media="three", retries=0))
        assert sender.drain() == 0
        calls = receiver.wait_for_calls(2)
    assert [c["body"]["file"] for c in calls] == ["x", "y"]
