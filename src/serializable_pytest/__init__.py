"""keras-serializable's pytest plugin: the `keras_roundtrip` fixture.

A separate top-level package so that pytest loading the plugin does not import
Keras: a project that picks its backend in conftest.py must be able to.

It is registered through the `pytest11` entry point, so it is active wherever
keras-serializable is installed. Keras is imported only when a test uses the
fixture, so projects that never do pay nothing at startup.

    def test_model_saves(keras_roundtrip):
        keras_roundtrip(build_model())

Run every `keras_roundtrip` check in a fresh interpreter as well with
`pytest --keras-roundtrip-fresh`, or per test with
`@pytest.mark.keras_roundtrip_fresh`. Reload every file under other Keras
backends too with `pytest --keras-roundtrip-backends=jax,torch`. Both have an
ini equivalent, for pyproject.toml's `[tool.pytest.ini_options]` (or
pytest.ini): `keras_roundtrip_fresh = true`, `keras_roundtrip_backends =
"jax,torch"`; the command line wins over the ini file.

Deprecation warnings that Keras, TensorFlow, JAX, PyTorch, h5py or protobuf
raise from their own code while the fixture saves and reloads are not the
model's fault, so the fixture ignores them: a suite run with `-W error` is not
told that a model failed to save because of them. Warnings from your code are
untouched.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FRESH_OPTION = "--keras-roundtrip-fresh"
FRESH_MARKER = "keras_roundtrip_fresh"
BACKENDS_OPTION = "--keras-roundtrip-backends"
FRESH_INI = "keras_roundtrip_fresh"
BACKENDS_INI = "keras_roundtrip_backends"

# Modules whose own DeprecationWarnings the fixture ignores: the libraries
# Keras saves and loads through, not the user's code.
_THIRD_PARTY = (
    r"(keras|tensorflow|tf_keras|jax|jaxlib|torch|h5py|google\.protobuf|absl"
    r"|optree|ml_dtypes)(\.|$)"
)
# Raised by numpy, attributed to whichever frame converts a backend tensor
# (often Keras's saving code): a backend's __array__ predates numpy 2.
_KNOWN_MESSAGES = (
    "__array__ implementation doesn't accept a copy keyword",
    "__array_wrap__ must accept context and return_scalar",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keras-serializable")
    group.addoption(
        FRESH_OPTION,
        action="store_true",
        default=False,
        help="keras_roundtrip: also reload every file in a fresh Python process.",
    )
    group.addoption(
        BACKENDS_OPTION,
        default="",
        metavar="NAMES",
        help="keras_roundtrip: also reload every file under these Keras backends, "
        "comma-separated (e.g. jax,torch), each in a fresh process.",
    )
    parser.addini(
        FRESH_INI,
        type="bool",
        default=False,
        help=f"keras_roundtrip: as {FRESH_OPTION}, from the ini file.",
    )
    parser.addini(
        BACKENDS_INI,
        type="string",
        default="",
        help=f"keras_roundtrip: as {BACKENDS_OPTION}, from the ini file "
        "(comma-separated backend names).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{FRESH_MARKER}: keras_roundtrip also reloads in a fresh Python process.",
    )


@pytest.fixture
def keras_roundtrip(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[..., Any]:
    """Return `assert_roundtrip` bound to this test's `tmp_path`.

    Takes the same arguments as `serializable.assert_roundtrip`; files go in a
    fresh subdirectory of `tmp_path` per call, and `fresh_process` defaults to
    True under `--keras-roundtrip-fresh` or `@pytest.mark.keras_roundtrip_fresh`;
    `backends` defaults to the names given to `--keras-roundtrip-backends`.
    """
    from serializable import assert_roundtrip

    config = request.config
    fresh = (
        bool(config.getoption(FRESH_OPTION))
        or bool(config.getini(FRESH_INI))
        or request.node.get_closest_marker(FRESH_MARKER) is not None
    )
    option = str(config.getoption(BACKENDS_OPTION) or config.getini(BACKENDS_INI) or "")
    backends = tuple(name.strip() for name in option.split(",") if name.strip())
    counter = itertools.count()

    def check(obj: Any, inputs: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("tmp_path", tmp_path / f"keras_roundtrip_{next(counter)}")
        kwargs.setdefault("fresh_process", fresh)
        kwargs.setdefault("backends", backends)
        with warnings.catch_warnings():
            _ignore_known_warnings()
            return assert_roundtrip(obj, inputs, **kwargs)

    return check


def _ignore_known_warnings() -> None:
    """Inside `warnings.catch_warnings()`: ignore the libraries' own deprecations."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=_THIRD_PARTY)
    warnings.filterwarnings(
        "ignore", category=PendingDeprecationWarning, module=_THIRD_PARTY
    )
    for message in _KNOWN_MESSAGES:
        warnings.filterwarnings(
            "ignore",
            message=re.escape(message),
            category=DeprecationWarning,
        )
    # Keras's notice that .h5 is legacy: the fixture saves .h5 on purpose.
    warnings.filterwarnings("ignore", message="You are saving your model as an HDF5")
