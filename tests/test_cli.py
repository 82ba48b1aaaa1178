"""The `serializable` command: inspect, check and convert, run in-process via main()."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest

import serializable
from serializable import SerializableLayer
from serializable.cli import main


class CliScale(SerializableLayer, package="test_cli"):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.scale = self.add_weight(
            shape=(input_shape[-1],), initializer="random_normal", name="scale"
        )

    def call(self, x):
        return x * self.factor * self.scale


@serializable.register_keras_serializable(package="test_cli")
class CliForgetfulDense(keras.layers.Layer):
    """Planted bug: the hand-written get_config forgets `units`."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="k")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)

    def get_config(self):
        return super().get_config()  # `units` is missing


# A module that registers a CliScale-compatible class under another name, for
# files whose classes this process has not registered.
PLUGIN_SOURCE = """
import keras
from serializable import SerializableLayer


class CliScale(SerializableLayer, package={package!r}):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale")

    def call(self, x):
        return x * self.factor * self.scale
"""


def build_model() -> keras.Model:
    inner = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, name="inner_dense")], name="inner"
    )
    inputs = keras.Input((3,), name="x")
    hidden = keras.layers.Dense(8, name="dense")(inputs)
    hidden = CliScale(3.0, name="scale")(hidden)
    hidden = keras.layers.Dropout(0.1, name="drop")(hidden)
    outputs = keras.layers.Dense(1, name="head")(inner(hidden))
    return keras.Model(inputs, outputs, name="cli_model")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One model saved once in each format by serializable.save_model."""
    directory = tmp_path_factory.mktemp("cli")
    model = build_model()
    paths = {}
    for fmt in ("keras", "h5"):
        paths[fmt] = serializable.save_model(model, directory / f"model.{fmt}")
    return SimpleNamespace(model=model, paths=paths)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., SimpleNamespace]:
    """Call main() with the given arguments; return exit code, stdout, stderr."""

    def _run(*args: Any) -> SimpleNamespace:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return SimpleNamespace(code=code, out=captured.out, err=captured.err)

    return _run


def rewrite_classes(
    source: Path, target: Path, registered_name: str, module: str
) -> Path:
    """Copy a .keras file, renaming CliScale's registered name and module."""

    def edit(config: Any) -> Any:
        if isinstance(config, dict):
            if config.get("registered_name") == "test_cli>CliScale":
                config = {**config, "registered_name": registered_name}
                config["module"] = module
            return {key: edit(value) for key, value in config.items()}
        if isinstance(config, list):
            return [edit(value) for value in config]
        return config

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            if name == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            new.writestr(name, data)
    return target


def layer_params(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {layer["name"]: layer["params"] for layer in layers}


class TestHelp:
    @pytest.mark.parametrize("command", [[], ["inspect"], ["check"], ["convert"]])
    def test_help(self, command, run):
        """--help works on the program and on every command, and exits 0."""
        with pytest.raises(SystemExit) as exit_info:
            run(*command, "--help")
        assert exit_info.value.code == 0

    def test_help_describes_the_command(self, capsys):
        """A command's help says what it does and lists its options."""
        with pytest.raises(SystemExit):
            main(["check", "--help"])
        out = capsys.readouterr().out
        assert "usage: serializable check" in out
        for option in ("--import", "--formats", "--fresh-process"):
            assert option in out

    def test_no_command_prints_help_and_exits_2(self, run):
        """Without a command the usage goes to stderr and the exit code is 2."""
        result = run()
        assert result.code == 2
        assert "inspect" in result.err and "convert" in result.err

    def test_version(self, capsys):
        """--version prints the installed version."""
        with pytest.raises(SystemExit) as exit_info:
            main(["--version"])
        assert exit_info.value.code == 0
        assert serializable.__version__ in capsys.readouterr().out

    @pytest.mark.slow
    def test_python_dash_m(self):
        """`python -m serializable --help` runs the same command."""
        result = subprocess.run(
            [sys.executable, "-m", "serializable", "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0
        assert "usage: serializable" in result.stdout

    @pytest.mark.slow
    def test_not_imported_by_the_package(self):
        """`import serializable` does not import the command line."""
        code = "import serializable, sys; print('serializable.cli' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert result.stdout.strip() == "False", result.stderr


class TestInspect:
    @pytest.mark.parametrize("fmt", ["keras", "h5"])
    def test_json(self, fmt, saved, run):
        """--json lists layers with their parameter counts, the total and the custom class."""
        result = run("inspect", saved.paths[fmt], "--json")
        assert result.code == 0, result.err
        report = json.loads(result.out)
        assert report["format"] == fmt
        assert report["size_bytes"] == saved.paths[fmt].stat().st_size
        assert report["keras_version"] == keras.__version__
        assert report["model"]["name"] == "cli_model"
        model = saved.model
        assert report["total_params"] == model.count_params()
        top = layer_params(report["layers"])
        assert list(top) == [layer.name for layer in model.layers]
        for layer in model.layers:
            assert top[layer.name] == layer.count_params(), layer.name
        inner = next(item for item in report["layers"] if item["name"] == "inner")
        assert inner["class_name"] == "Sequential"
        assert layer_params(inner["children"])["inner_dense"] == 8 * 4 + 4
        scale = next(item for item in report["layers"] if item["name"] == "scale")
        assert scale["class_name"] == "CliScale"
        assert scale["registered_name"] == "test_cli>CliScale"
        [custom] = report["custom_classes"]
        assert custom["registered_name"] == "test_cli>CliScale"
        assert custom["class_name"] == "CliScale"
        assert custom["importable"] is True
        assert report["compile"] is None

    @pytest.mark.parametrize("fmt", ["keras", "h5"])
    def test_text(self, fmt, saved, run):
        """The text report shows format, versions, the layer tree and the total."""
        result = run("inspect", saved.paths[fmt])
        assert result.code == 0, result.err
        out = result.out
        assert f"format:      {fmt}" in out
        assert f"Keras {keras.__version__}" in out
        for name in ("dense", "scale", "drop", "inner", "inner_dense", "head"):
            assert f"\n  {name} " in out or f"\n    {name} " in out
        assert "CliScale [test_cli>CliScale]" in out
        total = saved.model.count_params()
        assert re.search(rf"^  total\s+{total:,}$", out, re.M)
        assert "test_cli>CliScale  class CliScale" in out
        assert "registered here" in out
        assert "not compiled" in out

    def test_compile_settings(self, tmp_path, run):
        """Loss, metrics, optimizer class and learning rate are shown for a compiled model."""
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(
            optimizer=keras.optimizers.Adam(0.005), loss="mse", metrics=["mae"]
        )
        for fmt in ("keras", "h5"):
            path = serializable.save_model(model, tmp_path / f"compiled.{fmt}")
            report = json.loads(run("inspect", path, "--json").out)
            assert report["compile"]["loss"] == "mse"
            assert report["compile"]["metrics"] == ["mae"]
            assert report["compile"]["optimizer"]["class_name"] == "Adam"
            assert report["compile"]["optimizer"]["learning_rate"] == pytest.approx(
                0.005
            )
            text = run("inspect", path).out
            assert "Adam (learning_rate=0.005)" in text

    def test_unregistered_class(self, saved, tmp_path, run):
        """A class not registered in this process is listed with importable False and its module."""
        path = rewrite_classes(
            saved.paths["keras"],
            tmp_path / "foreign.keras",
            "test_cli_elsewhere>CliScale",
            "no_such_package_for_cli_tests.layers",
        )
        result = run("inspect", path, "--json")
        assert result.code == 0, result.err
        [custom] = json.loads(result.out)["custom_classes"]
        assert custom == {
            "registered_name": "test_cli_elsewhere>CliScale",
            "class_name": "CliScale",
            "module": "no_such_package_for_cli_tests.layers",
            "importable": False,
            "module_found": False,
        }
        text = run("inspect", path).out
        assert "NOT registered here (its module cannot be found here)" in text

    def test_does_not_import_modules_named_in_the_file(
        self, saved, tmp_path, monkeypatch, run
    ):
        """inspect never imports a module the file names, even one it could import."""
        module = f"cli_untrusted_{uuid.uuid4().hex}"
        marker = tmp_path / "imported.txt"
        (tmp_path / f"{module}.py").write_text(
            f"open({str(marker)!r}, 'w').write('imported')\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        path = rewrite_classes(
            saved.paths["keras"], tmp_path / "untrusted.keras", "cli_x>CliScale", module
        )
        result = run("inspect", path, "--json")
        assert result.code == 0, result.err
        [custom] = json.loads(result.out)["custom_classes"]
        assert custom["module"] == module
        assert custom["importable"] is False
        assert custom["module_found"] is True  # found, yet not imported
        assert module not in sys.modules
        assert not marker.exists()
        assert f"pass --import {module}" in run("inspect", path).out

    @pytest.mark.parametrize(
        ("make", "expected"),
        [
            (lambda p: p.write_bytes(b""), "an empty file (0 bytes)"),
            (lambda p: p.write_bytes(b"not a model"), "which is neither"),
            (lambda p: None, "a path that does not exist"),
        ],
        ids=["empty", "garbage", "missing"],
    )
    def test_unusable_file(self, make, expected, tmp_path, run):
        """An empty, foreign or missing file exits 2 with a one-line message."""
        path = tmp_path / "model.keras"
        make(path)
        result = run("inspect", path)
        assert result.code == 2
        assert result.out == ""
        assert expected in result.err
        assert result.err.startswith("serializable inspect: error: Cannot ")
        assert result.err.count("\n") == 1
        assert "Traceback" not in result.err

    @pytest.mark.parametrize("fmt", ["keras", "h5"])
    def test_truncated_file(self, fmt, saved, tmp_path, run):
        """A truncated file is reported as truncated or corrupted, exit 2, no traceback."""
        data = saved.paths[fmt].read_bytes()
        path = tmp_path / f"cut.{fmt}"
        path.write_bytes(data[: len(data) // 2])
        result = run("inspect", path, "--json")
        assert result.code == 2
        assert "truncated or corrupted" in result.err
        assert result.err.count("\n") == 1


class TestCheck:
    @pytest.mark.parametrize("fmt", ["keras", "h5"])
    def test_good_model_passes(self, fmt, saved, run):
        """A correct model passes in both formats: exit 0 and the checks listed."""
        result = run("check", saved.paths[fmt])
        assert result.code == 0, result.out + result.err
        assert "checked class, config, weights, outputs" in result.out
        assert "OK: 'cli_model' (Functional) survives" in result.out

    def test_formats_option(self, saved, run):
        """--formats limits the round trip to the formats named."""
        result = run("check", saved.paths["keras"], "--formats", "keras")
        assert result.code == 0
        assert "keras: " in result.out
        assert "h5: " not in result.out

    # Keras warns about unrelated containers after a weight fails to load.
    @pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
    def test_planted_bug_is_found(self, tmp_path, run):
        """A get_config that drops `units` makes a file that does not reload: exit 1."""
        inputs = keras.Input((2,))
        model = keras.Model(inputs, CliForgetfulDense(3, name="forgetful")(inputs))
        path = tmp_path / "forgetful.keras"
        model.save(path)
        result = run("check", path)
        assert result.code == 1
        assert "FAILED" in result.out
        assert "does not reload" in result.out
        # Reloaded with the default units=4, the layer cannot take its kernel.
        # (torch prints the received shape as torch.Size([2, 3])).
        assert re.search(
            r"variable.shape=\(2, 4\), Received: value.shape=\S*\(\[?2, 3", result.out
        )
        assert "get_config that forgets an __init__ argument" in result.out

    def test_compiled_model_passes_in_both_formats(self, tmp_path, run):
        """check round-trips through save_model/load_model, so .h5 keeps compile and optimizer state."""
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
        path = serializable.save_model(model, tmp_path / "trained.keras")
        result = run("check", path)
        assert result.code == 0, result.out
        assert "h5: " in result.out and "training step" in result.out

    def test_missing_class_then_import(self, saved, tmp_path, monkeypatch, run):
        """An unregistered class exits 2 naming it; --import of its module makes it pass."""
        package = f"test_cli_plugin_{uuid.uuid4().hex[:8]}"
        module = f"cli_plugin_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{module}.py").write_text(PLUGIN_SOURCE.format(package=package))
        monkeypatch.chdir(tmp_path)  # --import also looks in the current directory
        path = rewrite_classes(
            saved.paths["keras"],
            tmp_path / "plugin.keras",
            f"{package}>CliScale",
            module,
        )
        missing = run("check", path)
        assert missing.code == 2
        assert f"'{package}>CliScale' (CliScale from module {module})" in missing.err
        assert f"on the command line: --import {module}" in missing.err
        assert "Only if you trust the file" in missing.err
        assert "Traceback" not in missing.err
        result = run("check", path, "--import", module)
        assert result.code == 0, result.out + result.err
        assert module in sys.modules

    @pytest.mark.slow
    def test_fresh_process(self, saved, tmp_path, monkeypatch, run):
        """--fresh-process reloads in a new process that imports the --import module."""
        package = f"test_cli_fresh_{uuid.uuid4().hex[:8]}"
        module = f"cli_fresh_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{module}.py").write_text(PLUGIN_SOURCE.format(package=package))
        monkeypatch.chdir(tmp_path)
        path = rewrite_classes(
            saved.paths["keras"],
            tmp_path / "fresh.keras",
            f"{package}>CliScale",
            module,
        )
        result = run(
            "check", path, "--import", module, "--formats", "keras", "--fresh-process"
        )
        assert result.code == 0, result.out + result.err
        assert "fresh process" in result.out

    def test_unknown_import(self, saved, run):
        """An --import that cannot be imported exits 2 naming the module."""
        result = run("check", saved.paths["keras"], "--import", "no_such_module_xyz")
        assert result.code == 2
        assert (
            "Cannot import module 'no_such_module_xyz' named by --import" in result.err
        )
        assert "Received: ModuleNotFoundError" in result.err

    def test_missing_file(self, tmp_path, run):
        """A missing file exits 2 with the reason."""
        result = run("check", tmp_path / "absent.keras")
        assert result.code == 2
        assert "a path that does not exist" in result.err


class TestConvert:
    @pytest.mark.parametrize(("source", "target"), [("h5", "keras"), ("keras", "h5")])
    def test_round_trip(self, source, target, saved, tmp_path, run):
        """Converting writes the other format, verified, and it predicts the same."""
        out = tmp_path / f"converted.{target}"
        result = run("convert", saved.paths[source], out)
        assert result.code == 0, result.err
        assert f"Wrote {out} ({target}, " in result.out
        assert "verified" in result.out
        restored = serializable.load_model(out)
        x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(restored(x)),
            keras.ops.convert_to_numpy(saved.model(x)),
            rtol=1e-6,
            atol=1e-6,
        )

    def test_refuses_existing_output(self, saved, tmp_path, run):
        """An existing OUT is kept and the exit code is 2, unless --force is given."""
        out = tmp_path / "taken.h5"
        out.write_bytes(b"keep me")
        result = run("convert", saved.paths["keras"], out)
        assert result.code == 2
        assert "Pass --force to replace it" in result.err
        assert out.read_bytes() == b"keep me"
        forced = run("convert", saved.paths["keras"], out, "--force", "--no-verify")
        assert forced.code == 0, forced.err
        assert "not verified (--no-verify)" in forced.out
        assert serializable.load_model(out).count_params() == (
            saved.model.count_params()
        )

    def test_unknown_suffix(self, saved, tmp_path, run):
        """An OUT suffix that names no format exits 2 before anything is loaded."""
        result = run("convert", saved.paths["keras"], tmp_path / "model.pt")
        assert result.code == 2
        assert "Received: suffix '.pt'" in result.err
        assert not (tmp_path / "model.pt").exists()
