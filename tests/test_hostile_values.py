"""Huge values from outside (a 1 MB hotword, a 5 KB language tag) are named by their start in errors, logs and HTTP
answers, never repeated in full: through the installed command and over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from funasr_subs.service import ServiceConfig
from tests.faults import clean_env, run_cli
from tests.servicekit import multipart, request, service

HUGE_WORD = "达" * 350_000  # a 1 MB line in a hotwords file
LONG_TAG = "z" * 5000


def test_a_one_megabyte_hotword_is_named_by_its_start(tmp_path: Path) -> None:
    left_out = tmp_path / "long.txt"
    left_out.write_text(f"达摩院 20\n{HUGE_WORD} 20\n", encoding="utf-8")
    bad_weight = tmp_path / "bad.txt"
    bad_weight.write_text(f"{HUGE_WORD} {'9' * 5000}x\n", encoding="utf-8")
    warned = run_cli("config", "--hotwords", str(left_out), env=clean_env(tmp_path))
    refused = run_cli("config", "--hotwords", str(bad_weight), env=clean_env(tmp_path))
    # one argument holds at most 128 KiB
    flag = run_cli("config", "--hotword", HUGE_WORD[:30_000] + "=x", env=clean_env(tmp_path))
    assert warned.returncode == 0 and "longer than 10 characters" in warned.stderr, warned.stderr[:300]
    assert refused.returncode == 2 and flag.returncode == 2, (refused.stderr[:300], flag.stderr[:300])
    for done in (warned, refused, flag):
        assert len(done.stderr) < 1000, done.stderr[:300]
    assert "350,000 characters" in warned.stderr and "350,000 characters" in refused.stderr
    assert "30,000 characters" in flag.stderr, flag.stderr


def test_a_five_kilobyte_language_tag_is_named_by_its_start(tmp_path: Path) -> None:
    done = run_cli("config", "--lang", LONG_TAG, env=clean_env(tmp_path))
    assert done.returncode == 2 and "5,000 characters" in done.stderr, done.stderr[:300]
    assert len(done.stderr) < 500, done.stderr[:300]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/asr?output=srt&language={LONG_TAG}", "audio_file"),
        (f"/asr?output=srt&encode={LONG_TAG}", "audio_file"),
        ("/v1/audio/transcriptions", "file"),
    ],
)
def test_a_long_language_over_http_is_not_echoed_in_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str, field: str
) -> None:
    parts = [(field, "a.wav", "audio/wav", b"RIFF" + bytes(100))]
    if field == "file":
        parts.append(("language", None, None, LONG_TAG.encode()))
    body, ctype = multipart(parts)
    caplog.set_level(logging.INFO)
    with service(ServiceConfig(port=0, upload_dir=tmp_path)) as svc:
        answer = request(svc, "POST", path, body, {"Content-Type": ctype})
    assert 400 <= answer.status < 500, answer.body[:300]
    assert len(answer.body) < 1000, answer.body[:300]
    assert b"5,000 characters" in answer.body
    longest = max(len(r.getMessage()) for r in caplog.records)
    assert longest < 1500, "a log line repeats the whole value"
