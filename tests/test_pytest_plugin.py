"""The pytest plugin's ini options and its handling of Keras's own warnings.

The inner pytest runs in this process (`runpytest_inprocess`): Keras is
already imported, so each run costs a fraction of a second, not a new
interpreter's start-up.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A conftest that records what the fixture passes to assert_roundtrip.
RECORDING_CONFTEST = """
import pytest
import serializable


@pytest.fixture(autouse=True)
def record(monkeypatch):
    def fake(obj, inputs=None, **kwargs):
        print("KWARGS", kwargs["fresh_process"], kwargs["backends"])

    monkeypatch.setattr(serializable, "assert_roundtrip", fake)
"""

CALL_FIXTURE = """
def test_call(keras_roundtrip):
    keras_roundtrip(None)
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", *args)


def test_ini_options_are_declared(pytester):
    """Both ini names are known to pytest: --strict-config accepts them."""
    pytester.makeini(
        "[pytest]\nkeras_roundtrip_fresh = false\nkeras_roundtrip_backends =\n"
    )
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    _run(pytester, "--strict-config").assert_outcomes(passed=1)


def test_ini_options_reach_the_fixture(pytester):
    """`keras_roundtrip_fresh` and `keras_roundtrip_backends` from the ini file
    become the fixture's defaults."""
    pytester.makeini(
        "[pytest]\nkeras_roundtrip_fresh = true\n"
        "keras_roundtrip_backends = jax, torch\n"
    )
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_user=CALL_FIXTURE)
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*KWARGS True ('jax', 'torch')"])


def test_command_line_wins_over_the_ini_file(pytester):
    """--keras-roundtrip-backends replaces the ini file's list."""
    pytester.makeini("[pytest]\nkeras_roundtrip_backends = jax\n")
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_user=CALL_FIXTURE)
    result = _run(pytester, "--keras-roundtrip-backends=torch")
    result.stdout.fnmatch_lines(["*KWARGS False ('torch',)"])


def test_keras_warnings_do_not_fail_a_strict_suite(pytester):
    """Under `-W error`, deprecations raised inside Keras/TF/numpy while the
    fixture saves do not make the model fail to save."""
    pytester.makepyfile(
        test_user="""
        import keras

        def test_saves(keras_roundtrip):
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            keras_roundtrip(model)
        """
    )
    _run(pytester, "-W", "error").assert_outcomes(passed=1)


def test_user_warnings_still_surface(pytester):
    """The filter is only for the libraries: a warning from the user's own
    class still fails a `-W error` suite."""
    pytester.makepyfile(
        test_user="""
        import warnings
        import keras

        class Noisy(keras.layers.Layer):
            def call(self, x):
                warnings.warn("mine", DeprecationWarning)
                return x

        def test_saves(keras_roundtrip):
            model = keras.Sequential([keras.Input((2,)), Noisy()])
            keras_roundtrip(model, formats=("keras",))
        """
    )
    result = _run(pytester, "-W", "error")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mine*"])
