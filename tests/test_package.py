"""The package as users install it: its public surface, its metadata and the
Keras range it declares, and a smoke test of saving and loading.

`python3 dev.py test` also runs this file against the built wheel installed
into a fresh environment (with SERIALIZABLE_EXPECT_PREFIX set to it), so it
must pass both from the source tree and from an installed wheel.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import serializable

ROOT = Path(__file__).resolve().parents[1]
PREFIX = os.environ.get("SERIALIZABLE_EXPECT_PREFIX")


def bound_names(module_file: str) -> set[str]:
    """The public names a module's source binds at top level (imports and
    assignments): what `dir()` would show but for names other code adds."""
    tree = ast.parse(Path(module_file).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            # The names a lazy package binds on first use (`_EXPORTS`).
            if any(
                isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets
            ):
                if isinstance(node.value, ast.Dict):
                    names.update(
                        k.value for k in node.value.keys if isinstance(k, ast.Constant)
                    )
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")} - {"annotations"}


def test_all_is_the_public_surface():
    """__all__ lists exactly the public names the package's source binds,
    sorted, and each exists. Read from the source, not `dir()`: under an
    installed wheel pytest's assertion rewriting adds names to the package."""
    public = bound_names(serializable.__file__) - {"ctc"}  # a sub-namespace
    assert sorted(serializable.__all__) == serializable.__all__
    assert set(serializable.__all__) - {"__version__"} == public
    for name in serializable.__all__:
        assert hasattr(serializable, name)
    testing = importlib.import_module("serializable.testing")
    assert set(testing.__all__) <= set(dir(testing))


def test_installed_where_expected():
    """From the wheel, the package comes from the fresh environment, with its
    metadata and type marker; from the source tree, from src/."""
    location = Path(serializable.__file__).resolve()
    if PREFIX is None:
        pytest.skip("not running against an installed wheel")
    assert location.is_relative_to(Path(PREFIX).resolve()), location
    assert (location.parent / "py.typed").exists()
    assert serializable.__version__ == importlib.metadata.version("keras-serializable")
    script = Path(sys.prefix, "Scripts" if os.name == "nt" else "bin", "serializable")
    assert script.exists() or script.with_suffix(".exe").exists()


def _declared_keras() -> tuple[str, str]:
    if PREFIX is None:
        text = (ROOT / "pyproject.toml").read_text()
        requirement = re.search(r'"(keras\s*[<>=][^"]*)"', text).group(1)
    else:
        requires = importlib.metadata.requires("keras-serializable") or []
        requirement = next(r for r in requires if re.match(r"keras\s*[<>=]", r))
    low = re.search(r">=\s*([\d.]+)", requirement)
    high = re.search(r"<\s*([\d.]+)", requirement)
    assert low and high, f"expected keras>=X,<4, found {requirement!r}"
    return low.group(1), high.group(1)


def test_keras_range_is_declared_and_checked():
    """pyproject.toml declares `keras>=floor,<4`; the floor is the one CI tests
    (dev.py) and the one `_keras_compat` was checked against."""
    from serializable import _keras_compat

    low, high = _declared_keras()
    assert high == "4"
    assert _keras_compat.KERAS_TESTED[0] == low
    if PREFIX is None:
        dev = (ROOT / "dev.py").read_text()
        assert f'KERAS_FLOOR = "{low}"' in dev
        readme = (ROOT / "README.md").read_text()
        assert f"keras>={low},<4" in readme


@serializable.register_keras_serializable(package="test_package")
class Affine(keras.layers.Layer):
    def __init__(self, units=2, scale=(1.0, 2.0), **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units))

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) * np.asarray(self.scale, "float32")


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_smoke_save_and_load(tmp_path, suffix):
    """A registered layer saves and reloads, outputs and config equal."""
    model = keras.Sequential([keras.Input((3,)), Affine(name="affine")])
    x = np.arange(6, dtype="float32").reshape(2, 3)
    path = tmp_path / f"model.{suffix}"
    serializable.save_model(model, path)
    restored = serializable.load_model(path)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), restored.predict(x, verbose=0)
    )
    assert restored.get_layer("affine").scale == (1.0, 2.0)
