"""A FunASR-protocol server that answers at once (no recognition work), for timing the client side only."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.connection
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

REPLY = {
    "is_final": False,
    "mode": "offline",
    "stamp_sents": [
        {"end": 1500, "punc": "。", "start": 1000, "text_seg": "测 试", "ts_list": [[1000, 1200], [1200, 1500]]}
    ],
    "text": "测试。",
    "timestamp": "[[1000,1200],[1200,1500]]",
}


async def _handle(ws: ServerConnection) -> None:
    received = 0
    name = "x"
    async for message in ws:
        if isinstance(message, bytes):
            received += len(message)
            continue
        msg = json.loads(message)
        name = msg.get("wav_name", name)
        if msg.get("is_speaking") is False:
            await ws.send(json.dumps({**REPLY, "wav_name": name, "bytes": received}, ensure_ascii=False))
            received = 0


async def _serve(conn: multiprocessing.connection.Connection) -> None:
    async with serve(
        _handle,
        "127.0.0.1",
        0,
        max_size=32_000_000,
        compression=None,
        ping_interval=None,
        server_header="WebSocket++/0.8.2",  # as the C++ server's websocketpp: funasr-subs then asks nothing more
    ) as server:
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # any message: stop


def _main(conn: Any) -> None:
    asyncio.run(_serve(conn))


class InstantServer:
    """``with InstantServer() as url:`` — the server runs in its own process so it never shares our GIL."""

    def __enter__(self) -> str:
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.get_context("spawn").Process(target=_main, args=(child,), daemon=True)
        self._proc.start()
        port = self._conn.recv()
        return f"ws://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
