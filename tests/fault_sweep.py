"""The fault sweep: hundreds of bad inputs against the installed command, counted as tried / held per group.

``python -m tests.fault_sweep`` (a few minutes; prints one JSON object). "Held" means: one clear line and the right
exit code for a bad setting; no traceback, and every other file still done, for names, sidecars, FIFOs and links.
The tests in test_faults.py pin one case of each; this tries the wider list issue 10 was filed with.
"""

# ruff: noqa
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
from tests.faults import command

EXE = command()[0]
HOME = Path(tempfile.mkdtemp())
ENV = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
ENV["XDG_CONFIG_HOME"] = str(HOME / "none")
results = {}


def run(*args, env=None, timeout=20):
    try:
        return subprocess.run(
            [EXE, *args], capture_output=True, text=True, errors="replace", env=env or ENV, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None


def held_config(done):
    if done is None:
        return False
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    return done.returncode == 2 and "Traceback" not in done.stderr and len(lines) == 1


def tally(group, ok):
    t, h = results.get(group, (0, 0))
    results[group] = (t + 1, h + bool(ok))


BAD = ["nan", "inf", "-inf", "-1", "1e400", "1_0", "٢٠", "+-1", "0x10", ""]
FLAGS = [
    "--connect-timeout",
    "--reply-timeout",
    "--reply-timeout-ratio",
    "--retries",
    "--retry-backoff",
    "--jobs",
    "--max-width",
    "--max-lines",
    "--min-duration",
    "--max-duration",
    "--min-gap",
    "--max-cps",
    "--pause",
    "--linger",
    "--fps",
]
for flag in FLAGS:
    for bad in BAD:
        done = run("config", flag, bad)
        # some values are legal for some flags (e.g. -1? no; 0x10 never a float): a legal value must exit 0
        argparse_line = (
            done is not None
            and done.returncode == 2
            and "Traceback" not in done.stderr
            and flag in done.stderr.splitlines()[-1]
        )
        ok = held_config(done) or argparse_line
        tally("14 flags", ok)
for key in ["connect_timeout", "reply_timeout", "retries", "retry_backoff", "max_cps", "fps", "jobs"]:
    for bad in ["nan", "inf", "-inf", "-1", "1e400", "2.5" if key in ("retries", "jobs") else "1e9"]:
        cfg = HOME / "c.toml"
        cfg.write_text(f"{key} = {bad}\n", encoding="utf-8")
        tally("14 config file", held_config(run("config", "--config", str(cfg))))
        env = dict(ENV, **{f"FUNASR_SUBS_{key.upper()}": bad})
        tally("14 variables", held_config(run("config", env=env)))
for lang in ["zh\\u0000", "zh\\nx", "../x", "a/b", "zh\\t", " zh"]:
    cfg = HOME / "c.toml"
    cfg.write_text(f'lang = "{lang}"\n', encoding="utf-8")
    tally("14 lang", held_config(run("config", "--config", str(cfg))))
for raw in [b'lang = "\xff"\n', b"\xff\xfe\n", b"retries = 1\n\x00"]:
    cfg = HOME / "c.toml"
    cfg.write_bytes(raw)
    tally("14 config bytes", held_config(run("config", "--config", str(cfg))))
for toml in ['[serve]\nhost = ""\n', "[serve]\nmedia_server_timeout = nan\n", "[serve]\nport = -1\n"]:
    cfg = HOME / "c.toml"
    cfg.write_text(toml, encoding="utf-8")
    tally("14 serve", held_config(run("serve", "--config", str(cfg))))
for args in [
    ["--poll", "nan"],
    ["--poll", "inf"],
    ["--grace", "inf"],
    ["--settle", "nan"],
    ["--poll", "0"],
    ["--grace", "-1"],
]:
    (HOME / "lib").mkdir(exist_ok=True)
    done = run("watch", "--once", "--state-dir", str(HOME / "st"), *args, str(HOME / "lib"))
    tally("14 watch", done is not None and done.returncode == 2 and "Traceback" not in done.stderr)
for w in ["inf", "nan", "0", "101", "-5", "٢٠", "1_0", "2.5", "", "1e3"]:
    tally("hotword weights", held_config(run("config", "--hotword", f"达摩院={w}")))
    f = HOME / "h.txt"
    f.write_text(f"达摩院 {w}\n", encoding="utf-8")
    tally("hotword weights", held_config(run("config", "--hotwords", str(f))))

# --- sync: subtitles from outside (issue 19): encodings, structure, bad bytes, another film's short subtitle -------
import random, re
from funasr_subs.cues import PROFILES, build_cues
from funasr_subs.cues.script import convert
from funasr_subs.model import Cue
from funasr_subs.protocol import parse_reply
from funasr_subs.writers import render
from tests.replies import REPLIES, read_reply
from tests.sync_data import reply_of, speech_tokens

sync_dir = HOME / "sync"
sync_dir.mkdir()
said = read_reply(REPLIES / "11_offline_cpp_2025_long_talk_121s.json")
reply = sync_dir / "reply.json"
reply.write_text(json.dumps(said), encoding="utf-8")
made = build_cues(parse_reply(said).tokens, PROFILES["zh"])
STAMP = re.compile(r"\d+:\d\d(:\d\d)?[.,]\d+")


def quiet(done):
    return done is not None and "Traceback" not in done.stderr


def stamp(ms, sep=","):
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def srt(texts, nl="\n", late=3300):
    return nl.join(
        f"{k + 1}{nl}{stamp(c.start_ms + late)} --> {stamp(c.end_ms + late)}{nl}{t}{nl}"
        for k, (t, c) in enumerate(zip(texts, made))
    )


def kept_all_but_times(path, before, codec, bom=b""):
    data = path.read_bytes()
    if not data.startswith(bom):
        return False
    try:
        after = data[len(bom) :].decode(codec)
    except UnicodeDecodeError:
        return False
    return STAMP.sub("T", after) == STAMP.sub("T", before)


trad = [convert(c.text.replace("\n", " "), "tw") for c in made]
for codec, bom, nl in [
    ("big5", b"", "\n"),
    ("big5hkscs", b"", "\r\n"),
    ("gb18030", b"", "\n"),
    ("utf_16_le", b"\xff\xfe", "\r\n"),
    ("utf_16_be", b"\xfe\xff", "\n"),
    ("utf_16_le", b"", "\n"),
    ("utf_8", b"\xef\xbb\xbf", "\r\n"),
    ("shift_jis", b"", "\r\n"),
]:
    texts = [
        ("".join(ch for ch in t if ch.encode(codec, "ignore")) + ("嘅" if codec == "big5hkscs" else "")) for t in trad
    ]
    text = srt(texts, nl)
    sub = sync_dir / f"{codec}-{len(bom)}.srt"
    sub.write_bytes(bom + text.encode(codec))
    d = run("sync", str(sub), str(reply), "--in-place")
    tally("19 sync encodings", quiet(d) and d.returncode == 0 and kept_all_but_times(sub, text, codec, bom))
vtt = "WEBVTT - x\n\nSTYLE\n::cue { color: red }\n\nNOTE a note\n\n"
for k, c in enumerate(made):
    vtt += f"cue-{k}\n{stamp(c.start_ms + 900, '.')} --> {stamp(c.end_ms + 900, '.')} align:start\n{c.text}\n\n"
    vtt += f"NOTE n{k}\n\n"
ass_head = "[Script Info]\nScriptType: v4.00+\n\n[Aegisub Project Garbage]\nx: y\n\n[Events]\n"
ass_head += "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
ass_lines = []
for k, c in enumerate(made):
    start, end = stamp(c.start_ms + 900, ".")[1:-1], stamp(c.end_ms + 900, ".")[1:-1]
    ass_lines.append(f"Comment: 0,0:00:0{k % 10}.00,0:00:0{k % 10}.50,Default,,0,0,0,,keep me\n")
    ass_lines.append(f"Dialogue: 0,{start},{end},Default,,0,0,0,," + "{\\an8}" + "\\N".join(c.lines) + "\n")
ass = ass_head + "".join(ass_lines)
base = srt([c.text.replace("\n", " ") for c in made])
for name, text in [
    ("structure.vtt", vtt),
    ("structure.ass", ass),
    ("formfeed.srt", base.replace("\n", "\x0c", 3)),
    ("nel.srt", base.replace("\n", "\x85", 3)),
    ("numbers.srt", base.replace("\n1\n", "\n7\n")),
    ("stamps-in-text.srt", base.replace(made[2].text.replace("\n", " "), "00:00:01,000 --> 00:00:02,000", 1)),
]:
    sub = sync_dir / name
    sub.write_text(text, encoding="utf-8")
    d = run("sync", str(sub), str(reply), "--in-place")
    ok = quiet(d) and (
        (d.returncode == 0 and kept_all_but_times(sub, text, "utf_8"))
        or (d.returncode == 2 and sub.read_text(encoding="utf-8") == text)
    )
    tally("19 sync structure", ok)
for name, data in [
    ("nul.srt", b"1\n00:00:01,000 --> 00:00:02,000\n\x00\x81\xff\n"),
    ("high.srt", bytes(range(128, 256)) * 16),
    ("bom-then-gbk.srt", b"\xef\xbb\xbf" + base.encode("gb18030")),
    ("odd-utf16.srt", b"\xff\xfe" + base.encode("utf_16_le") + b"\x00"),
    ("cr-only.srt", base.replace("\n", "\r").encode()),
    ("empty.vtt", b"WEBVTT\n"),
    ("no-events.ass", b"[Script Info]\nTitle: x\n"),
]:
    sub = sync_dir / name
    sub.write_bytes(data)
    d = run("sync", str(sub), str(reply), "--in-place")
    lines = [l for l in d.stderr.splitlines() if l.strip()] if d else []
    tally("19 sync bad bytes", quiet(d) and d.returncode == 2 and len(lines) == 1 and sub.read_bytes() == data)


def film(seed, n=80):
    rng = random.Random(seed)
    t, out = 1000, []
    for _ in range(n):
        length = rng.randint(900, 4500)
        out.append(
            Cue(t, t + length, ("的一是不了人我在有他这中大来上个国到说们"[rng.randint(0, 19)] * (length // 250),))
        )
        t += length + rng.choice([rng.randint(100, 600), rng.randint(600, 3000)])
    return out


for seed in range(4):
    other = sync_dir / f"other{seed}.json"
    untidy = dict(lead_ms=150, pause=0.3, run_on=0.3)
    other.write_text(json.dumps(reply_of(speech_tokens(film(100 + seed), seed=seed, **untidy))), encoding="utf-8")
    cues = [Cue(c.start_ms + 7000, c.end_ms + 7000, ("so this is what we said",)) for c in film(seed)]
    for k in range(0, 40, 10):
        sub = sync_dir / f"short{seed}-{k}.en.srt"
        sub.write_text(render(cues[k : k + 10], "srt"), encoding="utf-8")
        d = run("sync", str(sub), str(other), "--in-place")
        tally(
            "19 sync short other film",
            quiet(d) and d.returncode == 1 and not (sync_dir / f"short{seed}-{k}.en.orig.srt").exists(),
        )
print(json.dumps(results))

# --- with a server: names, sidecars, FIFOs, loops ---------------------------------------------------------------
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.faults import DAMAGED_SIDECARS, HOSTILE_NAMES


def no_trace(done):
    return done is not None and "Traceback" not in done.stderr and "surrogates" not in done.stderr


with FunasrTestServer() as server:
    url = server.url
    lib = HOME / "names"
    lib.mkdir()
    plain = make_media(lib / "plain.m4a", [(500, 800)], 2000)
    names = list(HOSTILE_NAMES.values()) + [
        b"\xe9t\xe9.m4a",
        b"tab\there.m4a",
        b"cr\rname.m4a",
        b"esc\x1b[31mred.m4a",
        b"bell\x07.m4a",
        b"  spaces  .m4a",
        b"$(touch pwned).m4a",
        b"; rm -rf x.m4a",
        b"\xc3(.m4a",
        b"\xed\xa0\x80.m4a",
    ]
    for raw in names:
        os.link(plain, os.path.join(os.fsencode(lib), raw))
    done = run("transcribe", "--server", url, str(lib), timeout=120)
    for raw in names:
        stem = raw.rsplit(b".", 1)[0]
        made = os.path.exists(os.path.join(os.fsencode(lib), stem + b".zh.srt"))
        tally("2 names transcribe", no_trace(done) and (made or len(raw) >= 250))
    for f in lib.iterdir():
        if f.suffix in (".srt", ".json"):
            f.unlink()
    st = HOME / "st-names"
    done = run("watch", "--once", "--settle", "0", "--state-dir", str(st), "--server", url, str(lib), timeout=120)
    for raw in names:
        stem = raw.rsplit(b".", 1)[0]
        made = os.path.exists(os.path.join(os.fsencode(lib), stem + b".zh.srt"))
        tally("2 names watch", no_trace(done) and (made or len(raw) >= 250))
    again = run("watch", "--once", "--settle", "0", "--state-dir", str(st), "--server", url, str(lib), timeout=120)
    tally("2 names watch restart", no_trace(again) and again.returncode in (0, 1))
    for what in (["status", "--state-dir", str(st)], ["status", "--json", "--state-dir", str(st)]):
        d = run(*what)
        tally("2 names status", no_trace(d) and d.returncode == 0)
    for raw in names:
        d = run("hook", "--state-dir", str(HOME / "st-hook"), os.path.join(os.fsencode(lib), raw))
        tally("2 names hook", no_trace(d))
    # sidecars
    side_lib = HOME / "side"
    side_lib.mkdir()
    media = make_media(side_lib / "a.m4a", [(500, 800)], 2000)
    extra = {
        "big-mtime": '{"reply": {}, "media": {"name": "a.m4a", "size": 1, "mtime_ns": 1e400}}',
        "neg-inf": '{"reply": {}, "audio": {"offset_ms": -Infinity}}',
        "bool-size": '{"reply": {}, "media": {"name": "a.m4a", "size": true}}',
        "list": "[1, 2, 3]",
        "string": '"reply"',
        "empty": "",
        "nul-name": '{"reply": {}, "media": {"name": "a\\u0000b.mkv"}}',
        "abs-name": '{"reply": {}, "media": {"name": "/etc/passwd"}}',
        "dots": '{"reply": {}, "media": {"name": ".."}}',
        "deep-list": '{"reply": {"text": "x", "timestamp": ' + "[" * 100000 + "]" * 100000 + "}}",
        "huge-offset": '{"reply": {"text": "x"}, "audio": {"offset_ms": 1e300}}',
    }
    variants = {**DAMAGED_SIDECARS, **extra}
    for kind, text in variants.items():
        side = side_lib / "a.funasr.json"
        for cmd in ("transcribe", "retime", "watch"):
            for f in side_lib.iterdir():
                if f.name != "a.m4a":
                    f.unlink()
            side.write_bytes(text.encode("utf-8", "surrogateescape"))
            if cmd == "transcribe":
                d = run("transcribe", "--server", url, str(media), timeout=60)
                ok = no_trace(d) and d.returncode == 0
            elif cmd == "retime":
                d = run("retime", str(side))
                ok = no_trace(d) and d.returncode in (0, 1) and not (HOME / "etc").exists()
            else:
                d = run(
                    "watch",
                    "--once",
                    "--settle",
                    "0",
                    "--state-dir",
                    str(HOME / f"st-side-{kind}"),
                    "--server",
                    url,
                    str(side_lib),
                    timeout=60,
                )
                ok = no_trace(d) and d.returncode == 0
            tally(f"6 sidecars {cmd}", ok)
    # FIFOs
    fifo_lib = HOME / "fifo"
    (fifo_lib / "s").mkdir(parents=True)
    make_media(fifo_lib / "s" / "a.m4a", [(500, 800)], 2000)
    for where in ["hotwords.txt", "a.funasr.json"]:
        p = fifo_lib / "s" / where
        if p.exists():
            p.unlink()
        os.mkfifo(p)
        d = run(
            "watch",
            "--once",
            "--settle",
            "0",
            "--state-dir",
            str(HOME / f"st-fifo-{where}"),
            "--server",
            url,
            str(fifo_lib),
            timeout=60,
        )
        tally("7 fifo", no_trace(d))
        p.unlink()
    fifo = HOME / "pipe"
    os.mkfifo(fifo)
    for args in (
        ["transcribe", "--hotwords", str(fifo), str(fifo_lib / "s" / "a.m4a")],
        ["config", "--config", str(fifo)],
        ["transcribe", "--words", str(fifo), str(fifo_lib / "s" / "a.m4a")],
        ["transcribe", "--server", url, str(fifo)],
        ["retime", str(fifo)],
        ["check", str(fifo)],
    ):
        d = run(*args, timeout=20)
        tally("7 fifo", no_trace(d) and d.returncode != 0)
    # loops and links
    loop_lib = HOME / "loops"
    loop_lib.mkdir()
    make_media(loop_lib / "good.m4a", [(500, 800)], 2000)
    (loop_lib / "a.mkv").symlink_to("b.mkv")
    (loop_lib / "b.mkv").symlink_to("a.mkv")
    (loop_lib / "self.mp4").symlink_to("self.mp4")
    (loop_lib / "dangling.mkv").symlink_to("/nonexistent/x.mkv")
    (loop_lib / "dirloop").symlink_to(".", target_is_directory=True)
    d = run("transcribe", "--server", url, str(loop_lib), timeout=60)
    tally("10 loops transcribe", no_trace(d) and (loop_lib / "good.zh.srt").exists())
    for f in ("a.mkv", "self.mp4", "dangling.mkv"):
        d = run("transcribe", "--server", url, str(loop_lib / f))
        tally("10 loops transcribe", no_trace(d) and d.returncode == 1)
    d = run(
        "watch",
        "--once",
        "--settle",
        "0",
        "--state-dir",
        str(HOME / "st-loop"),
        "--server",
        url,
        str(loop_lib),
        timeout=60,
    )
    tally("10 loops watch", no_trace(d) and d.returncode == 0)
    d = run("retime", str(loop_lib / "a.mkv"))
    tally("10 loops retime", no_trace(d) and d.returncode == 1)
import shutil

shutil.rmtree(HOME, ignore_errors=True)
print(json.dumps(results, ensure_ascii=False))
total = sum(t for t, _ in results.values())
print(f"tried {total}, held {sum(h for _, h in results.values())}")
