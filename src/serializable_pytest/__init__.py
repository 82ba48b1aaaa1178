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
backends too with `pytest --keras-roundtrip-backends=jax,torch`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FRESH_OPTION = "--keras-roundtrip-fresh"
FRESH_MARKER = "keras_roundtrip_fresh"
BACKENDS_OPTION = "--keras-roundtrip-backends"


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

    fresh = bool(request.config.getoption(FRESH_OPTION)) or (
        request.node.get_closest_marker(FRESH_MARKER) is not None
    )
    option = str(request.config.getoption(BACKENDS_OPTION) or "")
    backends = tuple(name.strip() for name in option.split(",") if name.strip())
    counter = itertools.count()

    def check(obj: Any, inputs: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("tmp_path", tmp_path / f"keras_roundtrip_{next(counter)}")
        kwargs.setdefault("fresh_process", fresh)
        kwargs.setdefault("backends", backends)
        return assert_roundtrip(obj, inputs, **kwargs)

    return check
