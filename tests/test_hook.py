"""``funasr-subs hook`` run as Sonarr, Radarr and Bazarr run it: a subprocess with their variables and arguments."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from funasr_subs.commands.hook import read_call
from funasr_subs.watch.state import StateDB
from tests.funasr_server import FunasrTestServer
from tests.media import make_media

# this install's script (next to the interpreter) first: a `funasr-subs` on PATH may belong to another tree
_HERE = Path(sys.executable).with_name("funasr-subs")
EXE = str(_HERE) if _HERE.exists() else shutil.which("funasr-subs")
COMMAND = [EXE] if EXE else [sys.executable, "-m", "funasr_subs"]
SERVER_TV = "/tv"  # Sonarr's (container) view of the library


@dataclass
class Setup:
    lib: Path  # our view of Sonarr's /tv
    state: Path
    episode: Path
    env: dict[str, str]

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [*COMMAND, "hook", "--state-dir", str(self.state), "--root", str(self.lib)]
        argv += ["--path-map", f"{SERVER_TV}={self.lib}", *args]
        env = {**self.env, **(extra_env or {})}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    def jobs(self) -> list[tuple[Path, str, str]]:
        if not (self.state / "state.sqlite3").exists():
            return []
        with StateDB(self.state) as db:
            return [(j.path, j.state, j.source) for j in db.jobs()]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    lib = tmp_path / "library"
    season = lib / "Show One (2024)" / "Season 01"
    season.mkdir(parents=True)
    episode = season / 'Show One - S01E01 - Pilot\'s "Big" Day é.mkv'
    episode.write_bytes(b"pretend mkv")
    (season / "Show One - S01E02.mkv").write_bytes(b"another")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FUNASR_SUBS_") and not k.lower().startswith(("sonarr_", "radarr_"))
    }
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user config file leaks in
    yield Setup(lib, tmp_path / "state", episode, env)


def sonarr_download(setup: Setup, *, upgrade: bool = False) -> dict[str, str]:
    """The variables Sonarr v4 sets for On Import / On Upgrade (lower-cased by .NET's StringDictionary)."""
    relative = setup.episode.relative_to(setup.lib / "Show One (2024)")
    env = {
        "sonarr_eventtype": "Download",
        "sonarr_isupgrade": "True" if upgrade else "False",
        "sonarr_series_id": "12",
        "sonarr_series_title": "Show One",
        "sonarr_series_path": f"{SERVER_TV}/Show One (2024)",
        "sonarr_series_tvdbid": "123456",
        "sonarr_series_type": "Standard",
        "sonarr_episodefile_id": "345",
        "sonarr_episodefile_episodecount": "1",
        "sonarr_episodefile_relativepath": str(relative),
        "sonarr_episodefile_path": f"{SERVER_TV}/Show One (2024)/{relative}",
        "sonarr_episodefile_seasonnumber": "1",
        "sonarr_episodefile_episodenumbers": "1",
        "sonarr_episodefile_quality": "WEBDL-1080p",
        "sonarr_episodefile_sourcepath": "/downloads/complete/Show.One.S01E01.1080p.WEB.mkv",
        "sonarr_episodefile_sourcefolder": "/downloads/complete",
        "sonarr_download_client": "qBittorrent",
        "sonarr_download_id": "ABCDEF",
    }
    if upgrade:
        env["sonarr_deletedrelativepaths"] = "Season 01/Show One - S01E01 - Pilot WEBDL-720p.mkv"
        env["sonarr_deletedpaths"] = f"{SERVER_TV}/Show One (2024)/Season 01/Show One - S01E01 - Pilot WEBDL-720p.mkv"
    return env


@pytest.mark.parametrize("app", ["sonarr", "radarr"])
def test_test_event_exits_0_and_touches_nothing(setup: Setup, app: str) -> None:
    proc = setup.run(extra_env={f"{app}_eventtype": "Test"})
    assert proc.returncode == 0, proc.stderr
    assert "test event" in proc.stdout and proc.stderr == ""
    assert not setup.state.exists(), "a Test event must not even open the state database"


def test_sonarr_download_queues_exactly_the_imported_file(setup: Setup) -> None:
    proc = setup.run(extra_env=sonarr_download(setup))
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == [(setup.episode, "queued", "sonarr")]
    # no daemon is running: one clear warning naming the file and what to start
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(setup.episode) in warning[0] and "funasr-subs watch" in warning[0]


def test_sonarr_upgrade_requeues_the_replaced_file(setup: Setup) -> None:
    assert setup.run(extra_env=sonarr_download(setup)).returncode == 0
    with StateDB(setup.state) as db:  # the daemon did it...
        assert db.claim_next() is not None
        db.mark_done(setup.episode, written=[setup.episode.with_suffix(".zh.srt")])
    setup.episode.write_bytes(b"the better release, a different size")  # ...then Sonarr imported an upgrade
    proc = setup.run(extra_env=sonarr_download(setup, upgrade=True))
    assert proc.returncode == 0, proc.stderr
    assert "upgrade" in proc.stdout
    assert setup.jobs() == [(setup.episode, "queued", "sonarr")]


def test_sonarr_mixed_case_variable_names(setup: Setup) -> None:
    env = {
        k.replace("sonarr_eventtype", "Sonarr_EventType").replace(
            "sonarr_episodefile_path", "Sonarr_EpisodeFile_Path"
        ): v
        for k, v in sonarr_download(setup).items()
    }
    assert setup.run(extra_env=env).returncode == 0
    assert setup.jobs() == [(setup.episode, "queued", "sonarr")]


def test_radarr_download_queues_the_movie(setup: Setup) -> None:
    movie_dir = setup.lib / "Film (2023)"
    movie_dir.mkdir()
    movie = movie_dir / "Film (2023) Bluray-1080p.mkv"
    movie.write_bytes(b"film")
    env = {
        "radarr_eventtype": "Download",
        "radarr_isupgrade": "False",
        "radarr_movie_id": "7",
        "radarr_movie_title": "Film",
        "radarr_movie_path": f"{SERVER_TV}/Film (2023)",
        "radarr_moviefile_id": "70",
        "radarr_moviefile_relativepath": movie.name,
        "radarr_moviefile_path": f"{SERVER_TV}/Film (2023)/{movie.name}",
        "radarr_moviefile_quality": "Bluray-1080p",
    }
    proc = setup.run(extra_env=env)
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == [(movie, "queued", "radarr")]


@pytest.mark.parametrize("event", ["Grab", "Rename", "SeriesDelete", "HealthIssue", "EpisodeFileDelete"])
def test_other_sonarr_events_are_ignored(setup: Setup, event: str) -> None:
    env = {**sonarr_download(setup), "sonarr_eventtype": event}
    proc = setup.run(extra_env=env)
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == []


def bazarr_escape(value: str) -> str:
    """Bazarr's ``_escape`` (bazarr/utilities/post_processing.py): a double-quoted string, only \\ " and controls
    escaped, so the shell still expands $ and backticks inside it."""
    raw_map = {8: r"\\b", 7: r"\\a", 12: r"\\f", 10: r"\\n", 13: r"\\r", 9: r"\\t", 11: r"\\v", 34: r"\"", 92: r"\\"}
    return '"' + "".join(raw_map.get(ord(ch), ch) for ch in value) + '"'


def bazarr_run(setup: Setup, template: str, episode: str) -> subprocess.CompletedProcess[str]:
    """Bazarr's post-processing: '"{{episode}}"' (quotes included) replaced by its quoted value, run with shell=True."""
    line = re.sub(r"['\"]?{{episode}}['\"]?", lambda _: bazarr_escape(episode), template)
    prefix = " ".join(shlex.quote(a) for a in COMMAND)
    options = f"--state-dir {shlex.quote(str(setup.state))} --root {shlex.quote(str(setup.lib))}"
    options += f" --path-map {shlex.quote(f'{SERVER_TV}={setup.lib}')}"
    command = line.replace("funasr-subs hook", f"{prefix} hook {options}", 1)
    return subprocess.run(command, shell=True, env=setup.env, capture_output=True, text=True, timeout=60)


def test_bazarr_post_processing_template(setup: Setup) -> None:
    """The documented template, quoted and run exactly as Bazarr does; success says so on stdout, stderr stays empty
    (Bazarr logs any stderr output as an ERROR)."""
    server_path = f"{SERVER_TV}/{setup.episode.relative_to(setup.lib)}"
    proc = bazarr_run(setup, 'funasr-subs hook --media "{{episode}}"', server_path)
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == [(setup.episode, "queued", "bazarr")]
    with StateDB(setup.state) as daemon:  # with a daemon running there is nothing to warn about
        assert daemon.acquire_daemon_lock()
        again = bazarr_run(setup, "funasr-subs hook --media {{episode}}", server_path)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert "already queued" in again.stdout


def test_bazarr_quoting_lets_the_shell_expand_a_dollar(setup: Setup) -> None:
    """Bazarr's double quotes do not protect $: the hook gets another name and says what probably happened."""
    dollar = setup.episode.parent / "Show One - S01E05 - $HOME Alone.mkv"
    dollar.write_bytes(b"pretend")
    proc = bazarr_run(setup, 'funasr-subs hook --media "{{episode}}"', f"{SERVER_TV}/{dollar.relative_to(setup.lib)}")
    assert proc.returncode == 1
    assert "$" in proc.stderr and "Bazarr" in proc.stderr
    assert setup.jobs() == []


def test_bare_path_argument(setup: Setup) -> None:
    proc = setup.run(str(setup.episode))  # our own path: no mapping applies
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == [(setup.episode, "queued", "hook")]


def test_path_outside_the_roots_is_refused(setup: Setup, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.mkv"
    outside.write_bytes(b"x")
    link = setup.episode.parent / "sneaky.mkv"
    link.symlink_to(outside)
    for path in (str(outside), f"{SERVER_TV}/../elsewhere.mkv", f"{SERVER_TV}/{link.relative_to(setup.lib)}"):
        proc = setup.run("--media", path)
        assert proc.returncode == 1
        assert "outside the library roots" in proc.stderr
    assert setup.jobs() == []


def test_missing_file_names_it_and_suggests_path_map(setup: Setup) -> None:
    env = {**sonarr_download(setup), "sonarr_episodefile_path": "/other/mount/S01E09.mkv"}
    proc = setup.run(extra_env=env)
    assert proc.returncode == 1
    assert "/other/mount/S01E09.mkv" in proc.stderr and "--path-map" in proc.stderr
    assert setup.jobs() == []


def test_no_paths_and_no_environment_is_a_usage_error(setup: Setup) -> None:
    proc = setup.run()
    assert proc.returncode == 2 and "Sonarr/Radarr" in proc.stderr


def test_running_daemon_gets_the_file_without_a_warning(setup: Setup) -> None:
    with StateDB(setup.state) as daemon:
        assert daemon.acquire_daemon_lock()
        proc = setup.run(extra_env=sonarr_download(setup))
    assert proc.returncode == 0
    assert "warning" not in proc.stderr
    assert setup.jobs() == [(setup.episode, "queued", "sonarr")]


def test_inline_transcribes_when_no_daemon_runs(setup: Setup, funasr_server: FunasrTestServer) -> None:
    media = make_media(setup.episode.parent / "S01E03.mkv", bursts=[(500, 800)], duration_ms=2000)
    proc = setup.run("--inline", "--server", funasr_server.url, str(media))
    assert proc.returncode == 0, proc.stderr
    assert media.with_suffix(".zh.srt").exists()
    assert setup.jobs() == []


def test_inline_with_the_server_down_leaves_the_file_queued(setup: Setup, funasr_server: FunasrTestServer) -> None:
    media = make_media(setup.episode.parent / "S01E04.mkv", bursts=[(500, 800)], duration_ms=2000)
    funasr_server.fault = "refuse"
    proc = setup.run("--inline", "--server", funasr_server.url, "--retries", "0", str(media))
    assert proc.returncode == 0, proc.stderr
    assert "queued" in proc.stderr
    assert setup.jobs() == [(media, "queued", "hook")]


def test_read_call_prefers_explicit_paths_and_splits_plural_variables() -> None:
    assert read_call(["/a.mkv"], None, {"sonarr_eventtype": "Download"}).paths == ("/a.mkv",)
    plural = read_call([], None, {"sonarr_eventtype": "Download", "sonarr_episodefile_paths": "/a.mkv|/b.mkv"})
    assert plural.paths == ("/a.mkv", "/b.mkv") and plural.source == "sonarr"
    assert read_call([], "/x.mkv", {}).source == "bazarr"


# --- Sonarr/Radarr as they really run a Custom Script: a Path, no arguments, only the environment ----------------
def installed(name: str) -> str:
    """A console script of this install (the venv's bin folder need not be on PATH)."""
    here = Path(sys.executable).with_name(name)
    return str(here) if here.exists() else shutil.which(name) or name


HOOK_EXE = installed("funasr-subs-hook")


def arr_env(setup: Setup, tmp_path: Path, **variables: str) -> dict[str, str]:
    """Options from the config file (FUNASR_SUBS_CONFIG), exactly as a Sonarr container would carry them."""
    config = tmp_path / "funasr-subs.toml"
    config.write_text(
        f'[serve]\nroots = ["{setup.lib}"]\npath_map = ["{SERVER_TV}={setup.lib}"]\n'
        f'[watch]\nstate_dir = "{setup.state}"\n',
        encoding="utf-8",
    )
    return {**setup.env, "FUNASR_SUBS_CONFIG": str(config), **variables}


@pytest.mark.parametrize("argv0", ["funasr-subs-hook", "funasr-subs"])
def test_arr_test_button_with_no_arguments(setup: Setup, tmp_path: Path, argv0: str) -> None:
    exe = installed(argv0)
    proc = subprocess.run([exe], env=arr_env(setup, tmp_path, sonarr_eventtype="Test"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "test event" in proc.stdout
    assert not setup.state.exists()


@pytest.mark.parametrize("argv0", ["funasr-subs-hook", "funasr-subs"])
def test_sonarr_import_with_no_arguments_queues_from_the_config(setup: Setup, tmp_path: Path, argv0: str) -> None:
    exe = installed(argv0)
    proc = subprocess.run([exe], env=arr_env(setup, tmp_path, **sonarr_download(setup)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == [(setup.episode, "queued", "sonarr")]
    assert str(setup.episode) in proc.stdout


def test_radarr_import_with_no_arguments_and_environment_options(setup: Setup, tmp_path: Path) -> None:
    movie = setup.lib / "Film (2023).mkv"
    movie.write_bytes(b"film")
    env = {
        **setup.env,
        "FUNASR_SUBS_SERVE_ROOTS": str(setup.lib),
        "FUNASR_SUBS_SERVE_PATH_MAP": f"{SERVER_TV}={setup.lib}",
        "FUNASR_SUBS_SERVE_STATE_DIR": str(setup.state),
        "radarr_eventtype": "Download",
        "radarr_moviefile_path": f"{SERVER_TV}/{movie.name}",
    }
    proc = subprocess.run([HOOK_EXE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert setup.jobs() == [(movie, "queued", "radarr")]


def test_bare_funasr_subs_without_arr_variables_is_still_usage(setup: Setup) -> None:
    proc = subprocess.run([*COMMAND], env=setup.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_a_file_already_done_is_said_done_and_not_said_to_wait(setup: Setup) -> None:
    """Issue 20: "already queued or done" and then "will wait in the queue" for the same file."""
    server_path = f"{SERVER_TV}/{setup.episode.relative_to(setup.lib)}"
    first = setup.run(server_path)
    assert first.returncode == 0 and "will wait in the queue" in first.stderr
    again = setup.run(server_path)  # still queued: it does wait, and is said to
    assert "already queued: " in again.stdout + again.stderr and "will wait in the queue" in again.stderr
    with StateDB(setup.state) as db:  # the daemon did it since
        assert db.claim_next() is not None
        db.mark_done(setup.episode)
    done = setup.run(server_path)
    assert done.returncode == 0, done.stderr
    assert f"already done (unchanged since): {setup.episode}" in done.stdout + done.stderr
    assert "will wait" not in done.stderr and "queued or done" not in done.stdout + done.stderr
