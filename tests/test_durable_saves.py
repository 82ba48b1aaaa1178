"""save_model's durability: temporaries, fsync, exclusive creation, symlinks,
permissions, and a kill -9 harness (tests/durability/kill_harness.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import serializable
from serializable import _files, _h5
from serializable.cli import main

FORMATS = ("keras", "h5")


def tiny(value: float = 1.0) -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    for variable in model.weights:
        variable.assign(np.full(variable.shape, value, dtype="float32"))
    return model


def first_weight(path: Path) -> float:
    loaded = serializable.load_model(path, compile=False)
    return float(np.asarray(loaded.weights[0]).reshape(-1)[0])


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp." in p.name)


def dead_pid() -> int:
    for pid in range(4_000_000, 4_100_000):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    pytest.skip("no free process id found")


@pytest.mark.parametrize("fmt", FORMATS)
class TestTemporaries:
    def test_stale_temporaries_are_removed_by_the_next_save(self, tmp_path, fmt):
        """Left by killed saves: removed. Another live save's, another
        machine's, a recent old-style one's, or another target's: kept."""
        suffix = f".{fmt}"
        host = _files._host_tag()
        elsewhere = "0000" if host != "0000" else "ffff"
        stale = tmp_path / f".model.{dead_pid()}-{host}456789ab.tmp{suffix}"
        old = tmp_path / f".model.0123456789abcdef.tmp{suffix}"
        live = tmp_path / f".model.{os.getppid()}-{host}456789ab.tmp{suffix}"
        recent = tmp_path / f".model.fedcba9876543210.tmp{suffix}"
        other = tmp_path / f".other.{dead_pid()}-{host}456789ab.tmp{suffix}"
        remote = tmp_path / f".model.{dead_pid()}-{elsewhere}456789ab.tmp{suffix}"
        for path in (stale, old, live, recent, other, remote):
            path.write_bytes(b"partial")
        hours_ago = time.time() - 7200
        os.utime(old, (hours_ago, hours_ago))
        serializable.save_model(tiny(), tmp_path / f"model{suffix}")
        assert not stale.exists() and not old.exists()
        assert live.exists() and recent.exists() and other.exists()
        assert remote.exists()  # another machine's: its pids are not ours

    def test_failed_write_leaves_no_temporary(self, tmp_path, fmt, monkeypatch):
        def broken(*args, **kwargs):
            path = Path(args[1])
            path.write_bytes(b"half a file")
            raise OSError("disk full (simulated)")

        monkeypatch.setattr(_h5, "save", broken)
        monkeypatch.setattr(keras.saving, "save_model", broken)
        with pytest.raises(OSError, match="simulated"):
            serializable.save_model(tiny(), tmp_path / f"model.{fmt}")
        assert list(tmp_path.iterdir()) == []

    def test_file_and_directory_are_synced(self, tmp_path, fmt, monkeypatch):
        """The new file is fsynced before the rename, its directory after."""
        events: list[str] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(descriptor):
            target = os.readlink(f"/proc/self/fd/{descriptor}")
            events.append("fsync-dir" if os.path.isdir(target) else "fsync-file")
            return real_fsync(descriptor)

        def replace(src, dst):
            events.append("rename")
            return real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        serializable.save_model(tiny(), tmp_path / f"model.{fmt}")
        assert events[-3:] == ["fsync-file", "rename", "fsync-dir"]


@pytest.mark.parametrize("fmt", FORMATS)
class TestTarget:
    def test_overwrite_false_is_exclusive_under_a_race(
        self, tmp_path, fmt, monkeypatch
    ):
        """Another process creates the file while this save writes: this save
        fails and the other's file is kept (no check-then-rename window)."""
        path = tmp_path / f"model.{fmt}"
        other = tiny(7.0)
        serializable.save_model(other, tmp_path / f"other.{fmt}")
        theirs = (tmp_path / f"other.{fmt}").read_bytes()
        real_fsync = _files._fsync

        def racing_fsync(tmp):
            real_fsync(tmp)
            if not path.exists():
                path.write_bytes(theirs)  # the other process wins the race

        monkeypatch.setattr(_files, "_fsync", racing_fsync)
        with pytest.raises(FileExistsError, match="overwrite=False"):
            serializable.save_model(tiny(1.0), path, overwrite=False)
        assert path.read_bytes() == theirs
        assert temporaries(tmp_path) == []

    def test_overwrite_false_without_hard_links(self, tmp_path, fmt, monkeypatch):
        """Where hard links fail, an exclusive create still reserves the name."""

        def no_links(src, dst):
            raise OSError("hard links not supported (simulated)")

        monkeypatch.setattr(os, "link", no_links)
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(tiny(3.0), path, overwrite=False)
        assert first_weight(path) == 3.0
        with pytest.raises(FileExistsError):
            serializable.save_model(tiny(4.0), path, overwrite=False)
        assert first_weight(path) == 3.0

    def test_symlink_is_written_through(self, tmp_path, fmt):
        real = tmp_path / "store" / f"real.{fmt}"
        real.parent.mkdir()
        serializable.save_model(tiny(1.0), real)
        link = tmp_path / f"link.{fmt}"
        link.symlink_to(real)
        serializable.save_model(tiny(2.0), link)
        assert link.is_symlink()
        assert first_weight(real) == 2.0
        assert temporaries(real.parent) == [] and temporaries(tmp_path) == []

    def test_mode_is_kept(self, tmp_path, fmt):
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(tiny(1.0), path)
        path.chmod(0o600)
        serializable.save_model(tiny(2.0), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first_weight(path) == 2.0

    def test_read_only_target_is_refused(self, tmp_path, fmt):
        """As Keras's model.save refuses it; the file is left as it was."""
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(tiny(1.0), path)
        before = path.read_bytes()
        path.chmod(0o444)
        try:
            with pytest.raises(PermissionError, match="read-only"):
                serializable.save_model(tiny(2.0), path)
        finally:
            path.chmod(0o644)
        assert path.read_bytes() == before
        assert temporaries(tmp_path) == []

    def test_convert_without_force_is_exclusive(
        self, tmp_path, fmt, monkeypatch, capsys
    ):
        """Two converts to the same new path: the second one fails (exit 2)."""
        source = tmp_path / f"source.{fmt}"
        serializable.save_model(tiny(1.0), source)
        out = tmp_path / "out.keras"
        real_fsync = _files._fsync

        def racing_fsync(tmp):
            real_fsync(tmp)
            if not out.exists():
                out.write_bytes(b"the other convert's file")

        monkeypatch.setattr(_files, "_fsync", racing_fsync)
        code = main(["convert", str(source), str(out), "--no-verify"])
        assert code == 2
        assert "overwrite=False" in capsys.readouterr().err
        assert out.read_bytes() == b"the other convert's file"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_kill_9_never_loses_the_model(tmp_path, fmt):
    """Saves killed with SIGKILL at random moments (30 per format): the target
    always loads as the old or the new model, and the next save leaves no
    temporary behind. Backend-independent: runs once, on the numpy backend."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("file handling is the same on every backend; run once")
    script = Path(__file__).parent / "durability" / "kill_harness.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), fmt, "30", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    assert report["kills"] == 30
    # The kills did land inside saves: temporaries were seen between them.
    assert report["temporaries_seen"] > 0
