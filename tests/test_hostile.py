"""Files from a stranger: every hostile file of the corpus (tests/hostile/generate.py)
gives a library error naming the file, through `load_model` and every command
of the CLI, with the documented exit code, no traceback, and no module run.

The corpus runs in full on TensorFlow; nothing in it depends on the backend
(files are refused before a model is built, or while its config is decoded),
so other backends run a sample.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import signal
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import serializable
from serializable import ModelFileError, SerializableError, SerializableLayer
from serializable.cli import main

_spec = importlib.util.spec_from_file_location(
    "hostile_generate", Path(__file__).parent / "hostile" / "generate.py"
)
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
sys.modules["hostile_generate"] = generate
_spec.loader.exec_module(generate)


@serializable.register_keras_serializable(package="hostile")
class Mode(__import__("enum").Enum):
    FAST = 1
    SLOW = 2


class Knob(SerializableLayer, package="hostile"):
    """A library layer holding a tagged value, the target of config attacks."""

    def __init__(self, value=None, scale=0.5, **kwargs):
        super().__init__(**kwargs)
        self.value = value
        self.scale = scale

    def call(self, x):
        return x * self.scale


def small_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="hidden")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = Knob(value=Mode.FAST, name="knob")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x_data = rng.normal(size=(8, 4)).astype("float32")
    y_data = rng.normal(size=(8, 2)).astype("float32")
    model.fit(x_data, y_data, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("hostile-base")
    model = small_model()
    files = {}
    for fmt in ("keras", "h5"):
        path = directory / f"save_model.{fmt}"
        serializable.save_model(model, path)
        files["save_model", fmt] = path.read_bytes()
        plain = directory / f"plain.{fmt}"
        model.save(plain)
        files["plain_keras", fmt] = plain.read_bytes()
    return generate.Base(files, directory)


CASES = generate.cases()
# Other backends: one case of each family; the files never reach the backend.
SAMPLE = {
    case.name
    for case in CASES
    if case.name
    in {
        "code-enum_lazy_tf2onnx-keras",
        "code-enum_lazy_tf2onnx-h5",
        "code-ndarray_shape_bomb_data-h5",
        "h5-external_link",
        "keras-weights-external_storage",
        "tamper-h5-config-number",
        "tamper-keras-weights-gamma-beta-swapped",
        "bomb-config-depth-950",
        "zip-traversal-dotdot",
        "type-h5-keras-version-array",
        "special-fifo-keras",
    }
}


def test_corpus_is_large_enough():
    assert len(CASES) >= 120
    assert len({case.name for case in CASES}) == len(CASES)


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a FIFO opened for reading blocks forever)."""

    def expired(signum, frame):
        raise AssertionError(f"hung for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def expected_codes(case, inspect_code: int) -> dict[str, set[int]]:
    """Exit codes: 2 for unusable input; `check` exits 1 when the file reads
    but its model does not reload (a ModelFileError while loading)."""
    if case.stage == generate.READ:
        readable = False
    elif case.stage == generate.LOAD:
        readable = True
    else:
        readable = inspect_code == 0
    load_code = 1 if case.error is ModelFileError else 2
    return {
        "inspect": {0} if readable else {2},
        "check": {load_code} if readable else {2},
        "convert": {2},
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file(case, base, tmp_path, monkeypatch, capsys):
    if keras.backend.backend() != "tensorflow" and case.name not in SAMPLE:
        pytest.skip("backend-independent: the full corpus runs on TensorFlow")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    generate.write_markers(workdir)
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    dest = tmp_path / f"hostile{case.suffix}"
    case.make(base, dest)
    marker = workdir / generate.MARKER

    with deadline(60):
        with pytest.raises(SerializableError) as info:
            serializable.load_model(dest)
        assert type(info.value) is case.error, str(info.value)
        assert str(dest) in str(info.value)
        if case.says:
            assert case.says in str(info.value)
        capsys.readouterr()

        codes = {}
        out = tmp_path / "out.keras"
        for command, argv in (
            ("inspect", ["inspect", str(dest)]),
            ("check", ["check", str(dest), "--formats", "keras"]),
            ("convert", ["convert", str(dest), str(out)]),
        ):
            codes[command] = main(argv)
            printed = capsys.readouterr()
            assert "Traceback" not in printed.err + printed.out, command
            if codes[command] == 2:
                assert str(dest) in printed.err, (command, printed.err)
    expected = expected_codes(case, codes["inspect"])
    assert all(codes[c] in expected[c] for c in codes), (codes, expected)
    assert not out.exists()
    assert not marker.exists(), f"{marker.read_text()} was imported"
    assert not set(generate.MARKER_MODULES) & set(sys.modules)


def test_marker_modules_work(tmp_path, monkeypatch):
    """The corpus's marker would catch an import: importing one writes it."""
    generate.write_markers(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("sa_marker_mod")
        assert (tmp_path / generate.MARKER).read_text() == "sa_marker_mod"
    finally:
        sys.modules.pop("sa_marker_mod", None)


def test_good_files_still_load(base, tmp_path):
    """The corpus's starting files load: what it refuses is the damage."""
    for (writer, fmt), data in base.files.items():
        path = tmp_path / f"{writer}.{fmt}"
        path.write_bytes(data)
        model = serializable.load_model(path)
        assert model.get_layer("knob").value is Mode.FAST


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_plain_keras_loader_refuses_the_lazy_module_enum(
    base, tmp_path, fmt, monkeypatch
):
    """`keras.models.load_model` decodes the library's layers with the same
    codec: the lazy-module Enum imports nothing there either."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    generate.write_markers(workdir)
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    value, _ = generate.EVIL_VALUES["enum_lazy_tf2onnx"]
    dest = tmp_path / f"hostile.{fmt}"
    generate.edit_config(fmt, generate.with_value(value))(base, dest)
    with pytest.raises(Exception, match="not registered"):
        keras.models.load_model(dest)
    assert not (workdir / generate.MARKER).exists()
    assert "tf2onnx" not in sys.modules


def test_inspect_never_reads_weight_data(tmp_path):
    """`inspect` lists weight shapes from the HDF5 metadata only: it reads a
    small part of a large weights member, never the data (bytes read by this
    process, from /proc/self/io)."""
    import zipfile

    from serializable import _inspect

    io_stats = Path("/proc/self/io")
    if not io_stats.exists():
        pytest.skip("needs Linux's /proc/self/io to count bytes read")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(1024)])
    path = tmp_path / "big.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        member_size = archive.getinfo("model.weights.h5").file_size

    def bytes_read() -> int:
        fields = dict(line.split(": ") for line in io_stats.read_text().splitlines())
        return int(fields["rchar"])

    _inspect.read_file(path)  # once, so that lazy imports are not counted
    before = bytes_read()
    contents = _inspect.read_file(path)
    used = bytes_read() - before
    assert contents.weight_shapes["layers/dense/vars/0"] == (512, 1024)
    assert used < member_size / 10, (used, member_size)
