"""The `serializable` command's output: --json on check and convert, progress on
a terminal, quiet on a closed pipe, and no Keras import for --help/--version."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import serializable
from serializable.cli import EXIT_BROKEN_PIPE, main

from .test_cli import CliForgetfulDense  # planted bug: get_config forgets `units`


@serializable.register_keras_serializable(package="test_cli_output")
class OutputForgetfulScale(keras.layers.Layer):
    """Planted bug: `__init__` stores a derived value that `get_config` saves,
    so every save and reload doubles `factor`."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor * 2

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def saved_model(path: Path, layer: keras.layers.Layer | None = None) -> Path:
    layer = layer or keras.layers.Dense(2, name="head")
    model = keras.Sequential([keras.Input((3,)), layer], name="out_model")
    return serializable.save_model(model, path)


def run_json(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, dict]:
    code = main([str(a) for a in args])
    out = capsys.readouterr().out
    return code, json.loads(out)


class TestCheckJson:
    def test_passing_model(self, tmp_path, capsys):
        """check --json: one JSON object with status ok and a report per format."""
        path = saved_model(tmp_path / "m.keras")
        code, doc = run_json(capsys, "check", path, "--json", "--formats", "keras")
        assert code == 0
        assert doc["command"] == "check" and doc["path"] == str(path)
        assert doc["format"] == "keras" and doc["formats"] == ["keras"]
        assert doc["model"] == {"name": "out_model", "class_name": "Sequential"}
        assert (doc["ok"], doc["status"], doc["problems"]) == (True, "ok", {})
        assert "weights" in doc["reports"]["keras"]["checked"]
        assert doc["reports"]["keras"]["file_bytes"] > 0

    def test_file_does_not_reload(self, tmp_path, capsys):
        """A planted get_config bug the file cannot survive: exit 1, status
        does_not_reload, Keras's reason under problems["load"]."""
        path = saved_model(tmp_path / "m.h5", CliForgetfulDense(5, name="bug"))
        code, doc = run_json(capsys, "check", path, "--json", "--formats", "h5")
        assert code == 1
        assert (doc["ok"], doc["status"], doc["model"]) == (
            False,
            "does_not_reload",
            None,
        )
        assert list(doc["problems"]) == ["load"]
        assert "Cannot load" in doc["problems"]["load"][0]

    def test_problem_found(self, tmp_path, capsys):
        """A round trip that changes the model: exit 1, status problems, listed."""
        path = saved_model(tmp_path / "m.keras", OutputForgetfulScale(name="bug"))
        code, doc = run_json(capsys, "check", path, "--json", "--formats", "keras")
        assert code == 1, doc
        assert (doc["ok"], doc["status"]) == (False, "problems")
        found = [p for items in doc["problems"].values() for p in items]
        assert any("factor" in p for p in found), found


class TestConvertJson:
    def test_converted(self, tmp_path, capsys):
        """convert --json: what was written, in which format, verified."""
        source = saved_model(tmp_path / "m.h5")
        target = tmp_path / "m.keras"
        code, doc = run_json(capsys, "convert", source, target, "--json")
        assert code == 0
        assert doc == {
            "command": "convert",
            "input": str(source),
            "input_format": "h5",
            "output": str(target),
            "output_format": "keras",
            "ok": True,
            "written": True,
            "verified": True,
            "size_bytes": target.stat().st_size,
            "problems": [],
        }


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgress:
    def test_on_a_terminal(self, tmp_path, capsys, monkeypatch):
        """Each step of convert is announced on stderr when it is a terminal."""
        source = saved_model(tmp_path / "m.keras")
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        assert main(["convert", str(source), str(tmp_path / "m.h5")]) == 0
        lines = terminal.getvalue().splitlines()
        assert lines[0].startswith("serializable convert: [1/2] loading ")
        assert lines[1].startswith("serializable convert: [2/2] writing and verifying ")

    def test_not_in_a_pipe(self, tmp_path, capsys):
        """Nothing extra on stderr when it is not a terminal (a log, CI)."""
        source = saved_model(tmp_path / "m.keras")
        assert main(["convert", str(source), str(tmp_path / "m.h5")]) == 0
        assert capsys.readouterr().err == ""


def _python(*args: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


class TestClosedPipe:
    @pytest.mark.slow
    def test_quiet_when_the_reader_goes_away(self, tmp_path):
        """`inspect --json | head -1`: no "Broken pipe", the shell's SIGPIPE code."""
        path = saved_model(tmp_path / "m.keras")
        with _python("-m", "serializable", "inspect", str(path), "--json") as child:
            assert child.stdout is not None and child.stderr is not None
            child.stdout.close()  # the reader is gone before anything is written
            err = child.stderr.read()
            code = child.wait(timeout=120)
        assert code == EXIT_BROKEN_PIPE, err
        assert "Broken pipe" not in err and "BrokenPipeError" not in err
        assert "Exception ignored" not in err


class TestFastStart:
    @pytest.mark.slow
    def test_python_dash_m_imports_no_keras_for_version(self):
        """`python -X importtime -m serializable --version` lists no Keras module."""
        with _python("-X", "importtime", "-m", "serializable", "--version") as child:
            out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.startswith("serializable ")
        # Says which distribution answers: another package shares the name.
        assert "(keras-serializable, " in out
        imported = [line.rsplit("|", 1)[-1].strip() for line in err.splitlines()]
        assert [m for m in imported if m.split(".")[0] == "keras"] == []
