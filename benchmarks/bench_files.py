"""Measure `save_model` / `load_model` next to bare `model.save` / `load_model`.

The model is a ~25M-parameter Functional model (Dense 1024->4096->4096->1024,
~96 MiB of float32 weights), compiled with Adam and trained one step on a
tiny batch, so both formats hold the optimizer state users save with it: each
file is ~288 MiB. It is built once. Rows, each against its bare Keras
counterpart in the same format:

- `save .keras`, `save .h5`: `serializable.save_model(model, path)` against
  `model.save(path)`. By default each save goes to a path that does not
  exist (the previous repeat's file is deleted outside the timing);
  `--overwrite` saves over the previous file instead, synced to disk first
  (see `before_save`).
- `load .keras`, `load .h5`: `serializable.load_model(path)` against
  `keras.models.load_model(path)`, each side loading the file its own save
  wrote. For `.h5` the two sides do not do the same work: Keras's loader
  leaves Adam's slots fresh (it builds the optimizer on the Functional
  model's empty `_trainable_variables`, so `set_weights` fails and is only
  logged), while ours restores them (P15). The warm-up checks that both sides
  reload the weights exactly and prints what each restored of the optimizer.
- `load .keras, compile=False`, `load .h5, compile=False`: the readers
  without the optimizer, so the same work on both sides.
- `save .keras, verify=True`, `save .h5, verify=True`:
  `save_model(..., verify=True)`, which also reloads the new file and
  compares it with the model, twice: against the same bare `model.save`
  (what verifying costs on top of a save, with a looser target), and, in the
  `vs save+load` rows, against a bare `model.save` followed by
  `keras.models.load_model(path, compile=False)`, the least a user must run
  to learn that a file reloads. That baseline neither compiles the reloaded
  model nor compares anything, so the ratio is the whole cost of the check.

Timing (a warm-up call per side, interleaved repeats, `gc.collect()` before
each), the statistic (the minimum of the repeats) and the results file
(benchmarks/results/bench_files.json) come from `_harness`; every repeat, and
the median ratio beside the table's, are listed on stderr. Files go to a
`tempfile.TemporaryDirectory` (`--dir` to put it on another filesystem;
about 2 GiB is needed).

Usage:

    .venv/bin/python benchmarks/bench_files.py              # print the table
    .venv/bin/python benchmarks/bench_files.py --quick      # fewer repeats
    .venv/bin/python benchmarks/bench_files.py --check      # exit 1 on a miss
    .venv/bin/python benchmarks/bench_files.py --overwrite  # save over old files
    .venv/bin/python benchmarks/bench_files.py --profile    # where time goes

`--profile` skips the timing and runs one warm call of each side per row
under cProfile: the share of each phase of the library call, the same
functions in the bare Keras call beside it, and the library call's top
functions by cumulative time. See benchmarks/README.md for recorded results.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _harness
import keras
import numpy as np
from _harness import Side

import serializable

INPUT_DIM = 1024
HIDDEN = (4096, 4096)
OUTPUTS = 1024
TARGET = 1.05
# verify=True reloads the file it just wrote and compares weights and outputs:
# a save, a load and two calls, against a bare save.
VERIFY_TARGET = 2.50
# The same against a bare save and reload: what the comparison (class,
# configs, weights, outputs) and compiling the reloaded model add. The same
# target as assert_roundtrip's uncompiled rows in bench_roundtrip.py.
VERIFY_RELOAD_TARGET = 1.30
FORMATS = ("keras", "h5")

# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def build_model() -> keras.Model:
    """Dense layers holding ~25M float32 weights, compiled and trained a step."""
    inputs = keras.Input((INPUT_DIM,), name="features")
    x = inputs
    for units in HIDDEN:
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(OUTPUTS)(x)
    model = keras.Model(inputs, outputs, name="big")
    # A loss object, not "mse": plain Keras cannot reload the string from .h5
    # (P7), and the baseline must be able to load what it saved.
    model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    rng = np.random.default_rng(0)
    x_batch = rng.standard_normal((2, INPUT_DIM)).astype("float32")
    y_batch = rng.standard_normal((2, OUTPUTS)).astype("float32")
    model.train_on_batch(x_batch, y_batch)  # Adam now has moments to save
    return model


# ---------------------------------------------------------------------------
# The two sides: each returns the seconds it took
# ---------------------------------------------------------------------------


def compile_config_keeper(model: keras.Model) -> Callable[[], None]:
    """A function that puts back the model's compile config as it is now.

    Keras's `.h5` writer pops "optimizer" out of the model's own compile config
    (`saving_utils.model_metadata`), so after a bare `model.save("m.h5")` a
    `.keras` save would record no optimizer. Run after each bare `.h5` save.
    """
    config = model._compile_config.config
    kept = dict(config)

    def restore() -> None:
        config.clear()
        config.update(kept)

    return restore


def check_loaded(model: keras.Model, loader: Callable[[], keras.Model]) -> str:
    """Fail unless `loader` rebuilds `model`'s weights; describe its optimizer."""
    restored = loader()
    for original, loaded in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(original), keras.ops.convert_to_numpy(loaded)
        )
    optimizer = getattr(restored, "optimizer", None)
    if optimizer is None:
        return "no optimizer"
    slots = [v for v in optimizer.variables if len(v.shape) > 0]
    restored_slots = any(
        np.any(keras.ops.convert_to_numpy(v)) for v in slots
    )  # Adam's moments are nonzero after a step, zero when freshly built
    return (
        f"iterations {int(keras.ops.convert_to_numpy(optimizer.iterations))}, "
        f"{len(slots)} slots {'restored' if restored_slots else 'FRESH (zeros)'}"
    )


@dataclass
class Case:
    """One row: a bare Keras call and the keras-serializable call beside it."""

    name: str
    kind: str  # "save" or "load": which phases --profile reports
    baseline: Side
    library: Side
    target: float = TARGET

    def sides(self) -> dict[str, Side]:
        return {"keras": self.baseline, "serializable": self.library}


def before_save(path: Path, overwrite: bool) -> Callable[[], None]:
    """What runs before a timed save: start from a new path, or a settled old file.

    Freeing the blocks of a written-back 288 MiB file costs ~0.3 s on this
    machine's ext4, paid by both sides when they overwrite (Keras when it
    truncates the file, save_model when it renames over it), but at moments
    set by the kernel's writeback, which makes single repeats swing by 2x. By
    default the previous file is deleted outside the timing; its pages, not
    yet written back, are dropped without disk I/O. With --overwrite the old
    file stays and everything is synced first, so both sides pay the full
    cost of replacing a checkpoint on disk, every time.
    """

    def fresh() -> None:
        path.unlink(missing_ok=True)

    return os.sync if overwrite else fresh


def make_cases(model: keras.Model, workdir: Path, overwrite: bool) -> list[Case]:
    restore = compile_config_keeper(model)

    def saving(
        work: Callable[[Path], object], path: Path, fmt: str, ours: bool
    ) -> Side:
        """A save to `path` (prepared by `before_save`); Keras's `.h5` writer
        needs its compile config put back after it."""
        after = restore if fmt == "h5" and not ours else None
        return Side(lambda: work(path), before_save(path, overwrite), after)

    def bare_save_and_reload(path: Path) -> None:
        model.save(path)
        keras.models.load_model(path, compile=False)

    def plain_save(path: Path) -> None:
        serializable.save_model(model, path)

    def verified(path: Path) -> None:
        serializable.save_model(model, path, verify=True)

    def durable_save(path: Path) -> None:
        """Keras's save, then what save_model adds for durability: the file
        and its directory synced to disk (a crash cannot leave a torn file)."""
        model.save(path)
        for target in (path, path.parent):
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    cases: list[Case] = []
    for fmt in FORMATS:
        bare, ours = workdir / f"bare.{fmt}", workdir / f"ours.{fmt}"
        saved_bare = workdir / f"saved_bare.{fmt}"
        cases += [
            Case(
                f"save .{fmt}",
                "save",
                saving(model.save, saved_bare, fmt, False),
                saving(plain_save, workdir / f"saved_ours.{fmt}", fmt, True),
            ),
            Case(
                f"load .{fmt}",
                "load",
                Side(lambda bare=bare: keras.models.load_model(bare)),
                Side(lambda ours=ours: serializable.load_model(ours)),
            ),
        ]
    # Without the optimizer: for .h5, what the reader costs apart from
    # restoring Adam's slots, which plain Keras skips (see the module
    # docstring); for .keras, the loader as verify=True runs it.
    for fmt in FORMATS:
        bare, ours = workdir / f"bare.{fmt}", workdir / f"ours.{fmt}"
        cases.append(
            Case(
                f"load .{fmt}, compile=False",
                "load",
                Side(lambda bare=bare: keras.models.load_model(bare, compile=False)),
                Side(lambda ours=ours: serializable.load_model(ours, compile=False)),
            )
        )
    # save_model syncs the file and its directory; model.save does not. Against
    # a Keras save made equally durable, what is left is the library's own work.
    for row, baseline, stem, ours, target in (
        ("save .{} vs save + fsync", durable_save, "durable", plain_save, TARGET),
        ("save .{}, verify=True", model.save, "saved", verified, VERIFY_TARGET),
        (
            "save .{}, verify=True vs save+load",
            bare_save_and_reload,
            "reloaded",
            verified,
            VERIFY_RELOAD_TARGET,
        ),
    ):
        for fmt in FORMATS:
            cases.append(
                Case(
                    row.format(fmt),
                    "save",
                    saving(baseline, workdir / f"{stem}_bare.{fmt}", fmt, False),
                    saving(ours, workdir / f"{stem}_ours.{fmt}", fmt, True),
                    target,
                )
            )
    return cases


def check_files(model: keras.Model, workdir: Path) -> None:
    """Write each side's files once and check that both reload the weights."""
    restore = compile_config_keeper(model)
    for fmt in FORMATS:
        bare = workdir / f"bare.{fmt}"
        ours = workdir / f"ours.{fmt}"
        model.save(bare)
        restore()
        serializable.save_model(model, ours)
        baseline = check_loaded(model, lambda bare=bare: keras.models.load_model(bare))
        library = check_loaded(model, lambda ours=ours: serializable.load_model(ours))
        size = ours.stat().st_size / 2**20
        print(
            f"  .{fmt} ({size:.0f} MiB): weights reload exactly on both sides; "
            f"optimizer: keras.models.load_model {baseline}; "
            f"serializable.load_model {library}",
            file=sys.stderr,
            flush=True,
        )


# ---------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------


def describe_model(model: keras.Model) -> str:
    params = model.count_params()
    return (
        f"Functional, {params:,} parameters ({params * 4 / 2**20:.0f} MiB "
        f"float32; Dense {INPUT_DIM}->{'->'.join(map(str, HIDDEN))}->{OUTPUTS}), "
        "compiled with Adam and trained one step"
    )


# ---------------------------------------------------------------------------
# Profile: where one library call spends its time
# ---------------------------------------------------------------------------

# (label, file suffix, function name): the phases of one save_model or
# load_model call, which do not overlap, then parts of them and of Keras's own
# work, shown beside the same functions in the bare Keras call.
SAVE_PHASES = (
    ("_h5.check_limits", "serializable/_h5.py", "check_limits"),
    ("keras.saving.save_model (.keras write)", "saving/saving_api.py", "save_model"),
    ("_files._add_keras_manifest", "serializable/_files.py", "_add_keras_manifest"),
    ("_h5.save (.h5 write)", "serializable/_h5.py", "save"),
    ("_verify (reload + compare_models)", "serializable/_files.py", "_verify"),
    ("os.replace", "", "<built-in method posix.replace>"),
)
LOAD_PHASES = (
    ("_inspect.opened (sniff, metadata, close)", "serializable/_inspect.py", "opened"),
    ("_check_classes", "serializable/_files.py", "_check_classes"),
    ("keras.saving.load_model (.keras read)", "saving/saving_api.py", "load_model"),
    ("_h5.load_open (.h5 read)", "serializable/_h5.py", "load_open"),
)
DETAILS = (
    ("_manifest.manifest", "serializable/_manifest.py", "manifest"),
    ("_h5._write_weights", "serializable/_h5.py", "_write_weights"),
    (
        "keras save_weights_to_hdf5_group",
        "legacy_h5_format.py",
        "save_weights_to_hdf5_group",
    ),
    ("_h5._write_optimizer", "serializable/_h5.py", "_write_optimizer"),
    (
        "keras save_optimizer_weights_to_hdf5_group",
        "legacy_h5_format.py",
        "save_optimizer_weights_to_hdf5_group",
    ),
    ("_h5._checksum (write and check)", "serializable/_h5.py", "_checksum"),
    (
        "h5py make_new_dset (create, write, filter)",
        "h5py/_hl/dataset.py",
        "make_new_dset",
    ),
    ("file truncate (zipfile append mode)", "", "<method 'truncate' of"),
    # Closing a file that was truncated when it was opened makes ext4 start
    # writing it out (auto_da_alloc); closing one the writer created does not.
    ("file close (.keras)", "", "<method '__exit__' of '_io._IOBase'"),
    ("h5py File.close (.h5)", "h5py/_hl/files.py", "close"),
    ("serializable.load_model", "serializable/_files.py", "load_model"),
    (
        "_files._load (the load; in verify, the reload)",
        "serializable/_files.py",
        "_load",
    ),
    ("compare_models", "serializable/_compare.py", "compare_models"),
    *LOAD_PHASES,
    (
        "_inspect._keras_weight_shapes",
        "serializable/_inspect.py",
        "_keras_weight_shapes",
    ),
    (
        "keras extract_open_archive (to a temp dir)",
        "utils/file_utils.py",
        "extract_open_archive",
    ),
    (
        "keras model_from_config (.h5)",
        "legacy/saving/saving_utils.py",
        "model_from_config",
    ),
    ("_h5._load_weights", "serializable/_h5.py", "_load_weights"),
    (
        "keras load_weights_from_hdf5_group",
        "legacy_h5_format.py",
        "load_weights_from_hdf5_group",
    ),
    ("h5py Dataset read (np.asarray)", "h5py/_hl/dataset.py", "__array__"),
    ("Unfilled.fill (variables from arrays)", "serializable/_fastbuild.py", "fill"),
    ("Unfilled.finish (the rest initialized)", "serializable/_fastbuild.py", "finish"),
    (
        "_compile.compile_from_training",
        "serializable/_compile.py",
        "compile_from_training",
    ),
    ("_h5._load_optimizer", "serializable/_h5.py", "_load_optimizer"),
)


def _share(label: str, seconds: float, total: float, bare: float | None) -> str:
    reference = "" if bare is None else f"{bare * 1000:10.1f} ms"
    return f"{label:46} {seconds * 1000:8.1f} ms {seconds / total:6.1%}{reference}"


def _profiled(side: Side) -> pstats.Stats:
    if side.prepare is not None:
        side.prepare()
    profiler = cProfile.Profile()
    profiler.enable()
    side.call()
    profiler.disable()
    if side.after is not None:
        side.after()
    return pstats.Stats(profiler)


def profile(case: Case, top: int) -> None:
    _harness.measure(case.name, case.sides(), 0)  # the warm-up alone
    reference = _profiled(case.baseline)
    stats = _profiled(case.library)
    total = stats.total_tt  # type: ignore[attr-defined]
    bare = reference.total_tt  # type: ignore[attr-defined]
    print(
        f"\n=== {case.name}: one call of each side under cProfile\n"
        f"{'':46} {'serializable':>18} {'bare Keras':>12}\n"
        f"{'total':46} {total * 1000:8.1f} ms {1:6.1%}{bare * 1000:10.1f} ms"
    )
    accounted = 0.0
    phases = SAVE_PHASES if case.kind == "save" else LOAD_PHASES
    for label, _, seconds in _harness.phases(stats, phases):
        accounted += seconds
        print(_share(label, seconds, total, None))
    print(_share("everything else", total - accounted, total, None))
    print("of which, and the same functions in the bare call:")
    for label, suffix, name in DETAILS:
        if (label, suffix, name) in phases:
            continue
        calls, seconds = _harness.cumulative(stats, suffix, name)
        bare_calls, bare_seconds = _harness.cumulative(reference, suffix, name)
        if calls or bare_calls:
            print(_share(f"  {label}", seconds, total, bare_seconds))
    _harness.print_top(stats, top, " of the serializable call")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = _harness.parser(
        __doc__.splitlines()[0], profile="profile one library call per row"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to create the temporary directory (default: the system's)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="save over the previous repeat's file, synced to disk first, "
        "instead of to a new path",
    )
    args = parser.parse_args(argv)
    # Repeats per side; a full run takes about 2 minutes on 2 idle cores.
    repeats, clock = _harness.settings(args, 15)
    _harness.quiet()
    keras.utils.set_random_seed(0)
    model = build_model()
    with (
        tempfile.TemporaryDirectory(dir=args.dir) as tmp,
        warnings.catch_warnings(),
    ):
        # Keras warns on every .h5 save that the format is legacy.
        warnings.simplefilter("ignore")
        workdir = Path(tmp)
        check_files(model, workdir)
        os.sync()  # the files written so far reach the disk outside the timing
        cases = make_cases(model, workdir, args.overwrite)
        if args.profile:
            for case in cases:
                profile(case, args.top)
            return 0
        rows = _harness.time_cases(cases, repeats, clock)
    target = "over the previous file, synced" if args.overwrite else "to a new path"
    head = _harness.header(
        args,
        repeats,
        _harness.versions("tensorflow"),
        keras.backend.backend(),
        workload=f"model: {describe_model(model)}; ratio = keras-serializable / "
        f"bare Keras (model.save, keras.models.load_model); saves {target}",
    )
    cols = _harness.columns("keras", "serializable")
    return _harness.report("bench_files", args, head, cols, rows)


if __name__ == "__main__":
    sys.exit(main())
