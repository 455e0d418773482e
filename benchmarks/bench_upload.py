"""``POST /asr`` upload path: time and peak memory of the service against a read-it-all baseline, in one run.

    python -m benchmarks.bench_upload            # 256 MB of raw PCM (about 2 h 20 min of 16 kHz mono audio)
    python -m benchmarks.bench_upload --quick    # 64 MB

Both servers run in their own process, receive the same Bazarr-shaped multipart upload (``encode=false``) over
loopback, and hand the audio to the same ``recognise_file`` against an instant FunASR stand-in, so the difference is
the upload handling alone. The baseline is the best case of reading the whole body into memory: one read, then the
audio sliced out between the part headers and the closing boundary (no copy) and written to a temp file. (The stdlib
email parser, the other read-it-all route, needed 887 MB and 6 s for 64 MB here.) Peak RSS is each server
process's VmHWM, reset after start-up.
Targets: service peak RSS independent of upload size (≤ 100 MB); time within 1.5 × the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

from benchmarks.instant_server import InstantServer

CHUNK = 1024 * 1024

_SERVE = r"""
import os, sys, tempfile, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from funasr_subs.config import Settings

mode, funasr_url = sys.argv[1], sys.argv[2]
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
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
print(port, flush=True)
sys.stdin.read()
"""


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024


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


def measure(mode: str, funasr_url: str, size: int) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, mode, funasr_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        before = peak_rss_mb(proc.pid)
        seconds = upload(port, size)
        return {"seconds": seconds, "rss_mb": peak_rss_mb(proc.pid), "idle_rss_mb": before}
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MB instead of 256 MB")
    parser.add_argument("--mb", type=int, help="upload size in MB")
    args = parser.parse_args()
    mb = args.mb or (64 if args.quick else 256)
    size = mb * 1024 * 1024
    with InstantServer() as funasr_url:
        small = measure("service", funasr_url, 8 * 1024 * 1024)
        ours = measure("service", funasr_url, size)
        base = measure("naive", funasr_url, size)
    print(f"upload of {mb} MB raw PCM to POST /asr (encode=false), instant FunASR stand-in")
    print(f"  {'':22} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12}")
    for name, r, n in (("service, 8 MB", small, 8), (f"service, {mb} MB", ours, mb), (f"baseline, {mb} MB", base, mb)):
        print(f"  {name:22} {r['seconds']:8.2f} {n / r['seconds']:7.0f} {r['rss_mb']:12.1f}")
    print(f"  time ratio service/baseline:        {ours['seconds'] / base['seconds']:.2f} (target <= 1.5)")
    print(f"  peak RSS ratio service/baseline:    {ours['rss_mb'] / base['rss_mb']:.2f}")
    print(f"  service peak RSS {mb} MB vs 8 MB:   {ours['rss_mb'] / small['rss_mb']:.2f} (target ~1: size-independent)")
    print(json.dumps({"mb": mb, "service": ours, "service_8mb": small, "baseline": base}))


if __name__ == "__main__":
    main()
