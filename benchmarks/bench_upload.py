"""The HTTP service before and after its move to aiohttp, in one run: upload, keep-alive, idle connections.

    python -m benchmarks.bench_upload --old-tree /tmp/funasr-subs-main     # the http.server service as baseline
    python -m benchmarks.bench_upload --quick                               # 64 MB instead of 256 MB

Each server runs in its own process (``--old-tree`` puts another checkout first on ``sys.path`` for the "before"
one) and is measured the same way:

1. ``POST /asr`` with a Bazarr-shaped multipart upload (``encode=false``) handed to the same ``recognise_file``
   against an instant FunASR stand-in, so the difference is the upload handling: seconds, and the server's peak RSS
   (VmHWM, reset after start-up) at 8 MB and at the full size (flat memory: the two stay close). A read-it-all
   server (one read, the audio sliced out without a copy) is the floor for time and the ceiling for memory.
2. Keep-alive latency: 300 ``GET /health`` on one connection (Nagle plus delayed ACK cost ~40 ms each before).
3. 1,000 idle slow connections (a request line and half a header each, never finished) held open while fresh
   connections ask ``GET /health`` 50 times: latency median and worst (and the first request apart: it may wait
   behind the server accepting the 1,000 connections just made).
Targets: peak RSS independent of upload size (≤ 100 MB); upload time within 1.5 × the read-it-all baseline;
keep-alive ≤ 2 ms a request; /health ≤ 10 ms with 1,000 idle connections.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.instant_server import InstantServer

CHUNK = 1024 * 1024

_SERVE = r"""
import os, resource, sys, tempfile, threading
tree, mode, funasr_url = sys.argv[1], sys.argv[2], sys.argv[3]
if tree:
    sys.path.insert(0, tree)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from funasr_subs.config import Settings

settings = Settings(server=funasr_url)

if mode == "service":
    from funasr_subs.service import ServiceConfig, start_service
    handle = start_service(ServiceConfig(settings=settings, port=0, max_upload_mb=4096))
    port = handle.port
else:
    from funasr_subs.pipeline import recognise_file

    class Naive(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            boundary = self.headers["Content-Type"].split("boundary=")[1].encode()
            start = body.index(b"\r\n\r\n") + 4
            end = body.rindex(b"\r\n--" + boundary + b"--")
            with tempfile.NamedTemporaryFile(delete=False) as fh:
                fh.write(memoryview(body)[start:end])
            try:
                recognise_file(fh.name, settings, raw_pcm=True)
            finally:
                os.unlink(fh.name)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Naive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
import funasr_subs
print(port, os.path.dirname(funasr_subs.__file__), flush=True)
sys.stdin.read()
"""


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024


def reset_peak(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def body_parts(size: int, boundary: str) -> tuple[bytes, Iterator[bytes], bytes]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="audio_file"; filename="audio_file"\r\n\r\n'
    tail = f"\r\n--{boundary}--\r\n"
    block = bytes(range(256)) * (CHUNK // 256)

    def chunks() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield block[: min(CHUNK, left)]
            left -= CHUNK

    return head.encode(), chunks(), tail.encode()


def upload(port: int, size: int) -> float:
    boundary = os.urandom(16).hex()
    head, chunks, tail = body_parts(size, boundary)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.putrequest("POST", "/asr?task=transcribe&language=zh&output=srt&encode=false")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    for chunk in chunks:
        conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    response.read()
    seconds = time.perf_counter() - started
    conn.close()
    if response.status != 200:
        raise SystemExit(f"upload failed: HTTP {response.status}")
    return seconds


def keep_alive_ms(port: int, n: int = 300) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        times.append(time.perf_counter() - started)
    conn.close()
    return statistics.median(times) * 1000


def health_ms(port: int) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    status = conn.getresponse().status
    conn.close()
    if status != 200:
        raise SystemExit(f"/health answered {status}")
    return (time.perf_counter() - started) * 1000


def idle_connections(port: int, n: int = 1000) -> tuple[float, float, float]:
    """(median, worst, first) /health latency in ms while ``n`` connections sit half-way through their headers.

    The first request is reported apart: it may queue behind the server accepting the ``n`` connections just made.
    """
    idle = []
    try:
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Ag")
            idle.append(sock)
        first = health_ms(port)
        times = [health_ms(port) for _ in range(50)]
    finally:
        for sock in idle:
            sock.close()
    return statistics.median(times), max(times), first


class Server:
    """One server process (``tree`` first on sys.path; "" for this checkout)."""

    def __init__(self, tree: str, mode: str, funasr_url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, tree, mode, funasr_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        port, self.package = self.proc.stdout.readline().split()
        self.port = int(port)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def measure(tree: str, mode: str, funasr_url: str, size: int, *, extras: bool) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for label, n in (("8mb", 8 * CHUNK), ("full", size)):
        server = Server(tree, mode, funasr_url)
        try:
            reset_peak(server.proc.pid)
            out[f"seconds_{label}"] = upload(server.port, n)
            out[f"rss_mb_{label}"] = peak_rss_mb(server.proc.pid)
            out["package"] = server.package
            if extras and label == "full":
                out["keepalive_ms"] = keep_alive_ms(server.port)
                out["idle_health_ms"], out["idle_health_worst_ms"], out["idle_first_ms"] = idle_connections(server.port)
        finally:
            server.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MB instead of 256 MB")
    parser.add_argument("--mb", type=int, help="upload size in MB")
    parser.add_argument("--old-tree", type=Path, help="a checkout of the service before the move (the baseline)")
    args = parser.parse_args()
    mb = args.mb or (64 if args.quick else 256)
    size = mb * CHUNK
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    results: dict[str, dict[str, float | str]] = {}
    with InstantServer() as funasr_url:
        results["aiohttp service"] = measure("", "service", funasr_url, size, extras=True)
        if args.old_tree:
            results["http.server service"] = measure(
                str(args.old_tree.resolve()), "service", funasr_url, size, extras=True
            )
        results["read-it-all"] = measure("", "naive", funasr_url, size, extras=False)
    print(f"POST /asr upload of {mb} MB raw PCM (encode=false) to an instant FunASR stand-in; one run, shared machine")
    print(f"  {'':22} {'s 8 MB':>7} {f's {mb} MB':>8} {'MB/s':>6} {'RSS 8 MB':>9} {f'RSS {mb} MB':>10}"
          f" {'keep-alive ms':>14} {'/health ms (1000 idle): median, worst, first':>46}")  # fmt: skip
    for name, r in results.items():
        extra = ""
        if "keepalive_ms" in r:
            extra = f" {r['keepalive_ms']:14.2f} {r['idle_health_ms']:16.2f} {r['idle_health_worst_ms']:8.1f}"
            extra += f" {r['idle_first_ms']:8.1f}"
        print(
            f"  {name:22} {r['seconds_8mb']:7.2f} {r['seconds_full']:8.2f} {mb / float(r['seconds_full']):6.0f}"
            f" {r['rss_mb_8mb']:9.1f} {r['rss_mb_full']:10.1f}{extra}"
        )
    new, floor = results["aiohttp service"], results["read-it-all"]
    print(f"  upload time aiohttp / read-it-all:   {float(new['seconds_full']) / float(floor['seconds_full']):.2f}"
          " (target <= 1.5)")  # fmt: skip
    print(f"  peak RSS {mb} MB / 8 MB (aiohttp):     {float(new['rss_mb_full']) / float(new['rss_mb_8mb']):.2f} (~1)")
    if "http.server service" in results:
        old = results["http.server service"]
        for key, label in (
            ("seconds_full", f"upload time {mb} MB"),
            ("rss_mb_full", f"peak RSS {mb} MB"),
            ("keepalive_ms", "keep-alive latency"),
            ("idle_health_ms", "/health with 1000 idle"),
        ):
            print(f"  {label:24} aiohttp / http.server: {float(new[key]) / float(old[key]):.2f}")
    print(json.dumps({"mb": mb, **results}))


if __name__ == "__main__":
    main()
