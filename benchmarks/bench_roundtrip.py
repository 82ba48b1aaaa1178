"""Measure what `assert_roundtrip` costs next to a bare save, load and call.

The model is a ~1M-parameter Functional model: a few Dense layers and one
custom `serializable.SerializableLayer`. Each row times `assert_roundtrip` on
it and, in the same process, the least a test could do instead: for each of
the same formats, `model.save(path)`, `keras.models.load_model(path)` and one
call of the reloaded model on the same batch (`--baseline predict` uses
`predict()` instead). Rows:

- compiled with Adam and trained one step, both formats, the default checks
  (training step included) through `using="serializable"`, against a baseline
  that per format saves with `serializable.save_model`, loads with
  `serializable.load_model`, calls the reloaded model once and takes one
  `train_on_batch` on it (plain Keras's `.h5` loader returns an optimizer
  that cannot train the reloaded model, so the baseline uses the library's
  functions too); target 1.5x;
- uncompiled, one row per format and one with both (the default call);
- compiled with Adam and trained one step, `.keras` only: a legacy `.h5`
  file keeps no optimizer slots, which `assert_roundtrip` rightly reports;
  then the same with `check_training=False`, to show what the training-step
  check costs.

Timing (warm-up, interleaved repeats), the statistic (the minimum of the
repeats) and the results file (benchmarks/results/bench_roundtrip.json) come
from `_harness`; every repeat is listed on stderr.

Usage:

    .venv/bin/python benchmarks/bench_roundtrip.py            # print the table
    .venv/bin/python benchmarks/bench_roundtrip.py --quick    # fewer repeats
    .venv/bin/python benchmarks/bench_roundtrip.py --check    # exit 1 on a miss
    .venv/bin/python benchmarks/bench_roundtrip.py --profile  # where time goes

`--profile` skips the timing and runs one warm `assert_roundtrip` per case
under cProfile, printing the share of each phase and the top functions by
cumulative time. See benchmarks/README.md for recorded results.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import _harness
import keras
import numpy as np
from _harness import Side

import serializable

INPUT_DIM = 256
HIDDEN = (1024, 512, 384)
OUTPUTS = 10
BATCH = 32
TARGET = 1.30
# The training-step check runs one eager optimizer step on the original and one
# on the reloaded model (plus saving and restoring the original's weights):
# on 1M parameters that work alone is ~0.5x of a bare save+load+call.
TRAINING_STEP_TARGET = 2.00
# Against a baseline that also takes one training step on each reloaded model
# (save + load + call + train_on_batch per format), the default check, both
# formats with its training step, must cost at most 1.5x.
TRAINING_BASELINE_TARGET = 1.50

# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class ScaleShift(serializable.SerializableLayer, package="bench_roundtrip"):
    """A per-feature affine layer whose config keras-serializable generates."""

    def __init__(self, init_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_scale = init_scale

    def build(self, input_shape):
        features = input_shape[-1]
        self.scale = self.add_weight(
            shape=(features,),
            initializer=keras.initializers.Constant(self.init_scale),
        )
        self.shift = self.add_weight(shape=(features,), initializer="zeros")

    def call(self, x):
        return x * self.scale + self.shift


def build_model(name: str) -> keras.Model:
    inputs = keras.Input((INPUT_DIM,), name="features")
    x = keras.layers.Dense(HIDDEN[0], activation="relu")(inputs)
    x = ScaleShift(0.5)(x)
    for units in HIDDEN[1:]:
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(OUTPUTS)(x)
    return keras.Model(inputs, outputs, name=name)


def build_trained_model(x: np.ndarray, y: np.ndarray) -> keras.Model:
    model = build_model("trained")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.train_on_batch(x, y)  # one step: Adam now has moments to lose
    return model


# ---------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------


def make_baseline(
    model: keras.Model,
    x: np.ndarray,
    formats: Sequence[str],
    workdir: Path,
    use_predict: bool,
    y: np.ndarray | None = None,
) -> Side:
    """Per format: save, load, run the reloaded model once; given `y`, also one
    train_on_batch on it, through `serializable.save_model`/`load_model`
    (plain Keras's `.h5` loader returns an optimizer that cannot train the
    reloaded model). Afterwards, untimed: the outputs match the model's."""
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    save = keras.Model.save if y is None else serializable.save_model
    load = keras.models.load_model if y is None else serializable.load_model
    outputs: list[np.ndarray] = []

    def baseline() -> None:
        for fmt in formats:
            path = workdir / f"baseline_{model.name}.{fmt}"
            save(model, path)
            restored = load(path)
            if use_predict:
                outputs.append(restored.predict(x, verbose=0))
            else:
                outputs.append(keras.ops.convert_to_numpy(restored(x, training=False)))
            if y is not None:
                restored.train_on_batch(x, y)

    def check() -> None:  # a real round trip was timed
        np.testing.assert_allclose(outputs.pop(), expected, rtol=1e-6, atol=1e-6)
        outputs.clear()

    return Side(baseline, after=check)


def build_adam_model(x: np.ndarray, y: np.ndarray) -> keras.Model:
    """Compiled with Adam, a loss and a metric object, trained one step."""
    model = build_model("adam_trained")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError()],
    )
    model.train_on_batch(x, y)
    return model


def make_library(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray | None,
    formats: Sequence[str],
    workdir: Path,
    check_training: bool | None = None,
    using: str = "keras",
) -> Callable[[], None]:
    def library() -> None:
        serializable.assert_roundtrip(
            model,
            x,
            targets=y,
            formats=formats,
            check_training=check_training,
            tmp_path=workdir,
            using=using,
        )

    return library


# ---------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One row: a baseline and an `assert_roundtrip` call on the same model."""

    name: str
    baseline: Side
    library: Callable[[], None]
    target: float = TARGET

    def sides(self) -> dict[str, Side | Callable[[], None]]:
        return {"baseline": self.baseline, "assert_roundtrip": self.library}


def describe_model(params: int) -> str:
    return (
        f"Functional, {params:,} parameters (Dense {INPUT_DIM}->"
        f"{'->'.join(map(str, HIDDEN))}->{OUTPUTS} with a custom ScaleShift "
        f"layer), batch {BATCH}"
    )


# ---------------------------------------------------------------------------
# Profile: where one assert_roundtrip call spends its time
# ---------------------------------------------------------------------------

# (label, file suffix, function name): the phases of one call, which do not
# overlap, then extras that cut across them.
PHASES = (
    ("save (Model.save)", "keras/src/models/model.py", "save"),
    ("load (keras.models.load_model)", "keras/src/saving/saving_api.py", "load_model"),
    ("outputs (original + reloaded called)", "serializable/_compare.py", "_predict"),
    ("configs", "serializable/_compare.py", "_check_configs"),
    ("config completeness", "serializable/_compare.py", "_check_config_completeness"),
    ("weights", "serializable/_compare.py", "_check_weights"),
    ("compile state", "serializable/_roundtrip/training.py", "_check_compile"),
    ("optimizer state", "serializable/_roundtrip/training.py", "_check_optimizer"),
    ("training step", "serializable/_roundtrip/training.py", "_check_training_step"),
    ("fresh process", "serializable/_roundtrip/fresh.py", "_check_fresh_process"),
)
EXTRAS = (("get_config calls (all classes)", "", "get_config"),)


def _share(label: str, seconds: float, total: float, calls: int = 0) -> str:
    count = f"  ({calls} calls)" if calls else ""
    return f"{label:48} {seconds * 1000:8.1f} ms {seconds / total:6.1%}{count}"


def profile(case: Case, top: int) -> None:
    _harness.measure(case.name, case.sides(), 0)  # the warm-up alone
    profiler = cProfile.Profile()
    profiler.enable()
    case.library()
    profiler.disable()
    stats = pstats.Stats(profiler)
    _, total = _harness.cumulative(
        stats, "serializable/_roundtrip/api.py", "assert_roundtrip"
    )
    print(
        f"\n=== {case.name}: one assert_roundtrip under cProfile, {total * 1000:.0f} ms"
    )
    accounted = 0.0
    for label, calls, seconds in _harness.phases(stats, PHASES):
        accounted += seconds
        print(_share(label, seconds, total, calls))
    print(_share("everything else", total - accounted, total))
    for label, suffix, name in EXTRAS:
        calls, seconds = _harness.cumulative(stats, suffix, name)
        print(_share(label, seconds, total, calls))
    _harness.print_top(stats, top)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = _harness.parser(
        __doc__.splitlines()[0], profile="profile one assert_roundtrip per case"
    )
    parser.add_argument(
        "--baseline",
        choices=("call", "predict"),
        default="call",
        help="how the baseline runs the reloaded model: model(x) (default), the "
        "same call assert_roundtrip makes, or model.predict(x)",
    )
    parser.add_argument(
        "--only", default="", help="run only the cases whose name contains this"
    )
    args = parser.parse_args(argv)
    # Repeats per side; a full run takes about a minute on 2 idle cores.
    repeats, clock = _harness.settings(args, 21)
    _harness.quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, INPUT_DIM)).astype("float32")
    y = rng.standard_normal((BATCH, OUTPUTS)).astype("float32")
    plain = build_model("plain")
    use_predict = args.baseline == "predict"
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Keras warns on every .h5 save that the format is legacy.
        warnings.simplefilter("ignore")
        workdir = Path(tmp)
        trained = build_trained_model(x, y)
        adam = build_adam_model(x, y)
        cases = [
            Case(
                "compiled + trained, .keras + .h5, training step, using='serializable'",
                make_baseline(adam, x, ("keras", "h5"), workdir, use_predict, y),
                make_library(
                    adam, x, y, ("keras", "h5"), workdir, using="serializable"
                ),
                TRAINING_BASELINE_TARGET,
            ),
            *(
                Case(
                    f"uncompiled, {' + '.join('.' + f for f in formats)}",
                    make_baseline(plain, x, formats, workdir, use_predict),
                    make_library(plain, x, None, formats, workdir),
                )
                for formats in (("keras",), ("h5",), ("keras", "h5"))
            ),
            Case(
                "compiled + trained 1 step, .keras",
                make_baseline(trained, x, ("keras",), workdir, use_predict),
                make_library(trained, x, y, ("keras",), workdir),
                TRAINING_STEP_TARGET,
            ),
            Case(
                "compiled + trained 1 step, .keras, check_training=False",
                make_baseline(trained, x, ("keras",), workdir, use_predict),
                make_library(trained, x, y, ("keras",), workdir, False),
            ),
        ]
        cases = [case for case in cases if args.only in case.name]
        if args.profile:
            for case in cases:
                profile(case, args.top)
            return 0
        rows = _harness.time_cases(cases, repeats, clock)
    called = "predict" if use_predict else "model(x)"
    head = _harness.header(
        args,
        repeats,
        _harness.versions("tensorflow"),
        keras.backend.backend(),
        workload=f"model: {describe_model(plain.count_params())}; ratio = "
        f"assert_roundtrip / baseline (save + load_model + {called} in the "
        "same formats)",
    )
    cols = _harness.columns("baseline", "assert_roundtrip", digits=2)
    return _harness.report("bench_roundtrip", args, head, cols, rows)


if __name__ == "__main__":
    sys.exit(main())
