"""Measure CTC loss and decoding next to TensorFlow's native kernels and Keras.

Workload: B=32 utterances of T=200 frames over C=30 classes (blank 0), float32
logits drawn from a normal distribution, label sequences of random length 1-30
over classes 1-29 (seeded), every input length the full T (keras.losses.CTC
cannot take any other). CPU, TensorFlow backend. Rows, each "ours / reference":

- loss + gradient, each side compiled with `tf.function` (the gradient of the
  summed loss with respect to the logits, both fetched to numpy):
  - `serializable.ctc.ctc_loss` against `tf.nn.ctc_loss` given SparseTensor
    labels built from the lengths, which runs TensorFlow's native C++ kernel
    (the reference; target <= 1.20x);
  - against `keras.ops.ctc_loss` (dense labels, pure-TensorFlow recursion;
    target <= 1.00x: never slower) and `keras.losses.CTC()` (target <= 0.20x:
    at least 5x faster);
- training step: `train_on_batch` on a tiny model (Dense 16->64->30 per frame)
  ending in `CTCLayer`, against the same model ending in an endpoint layer
  that adds `keras.ops.ctc_loss` the way `keras.losses.CTC` computes it
  (target <= 1.00x);
- decoding, eager, on the same logits (width 10, top_paths 1):
  - `ctc_beam_search_numpy` (what the JAX and torch backends use) against
    TensorFlow's native `tf.nn.ctc_beam_search_decoder`, reached through
    `tensorflow_ops.ctc_beam_search_native` under `tf.function`, both from the
    same numpy log-probabilities to dense numpy paths (target <= 2.00x);
  - `ctc_decode(strategy="beam_search")` (TensorFlow's native decoder on this
    backend) and `ctc_decode(strategy="greedy")` against the same
    `keras.ops.ctc_decode` calls (informational).

The decode rows appear once `serializable._ctc_decode` exists. Timing (two
warm-up calls per side, interleaved repeats, `gc.collect()` before each
sample, timeit's `number` for sides under 50 ms), the statistic (the minimum
of the repeats) and the results file (benchmarks/results/bench_ctc.json) come
from `_harness`; `--clock cpu` times the process's CPU time, steadier on a
shared machine. Every repeat is listed on stderr; before timing, the sides of
each row are checked to compute the same thing.

Usage:

    .venv/bin/python benchmarks/bench_ctc.py            # print the table
    .venv/bin/python benchmarks/bench_ctc.py --quick    # fewer repeats
    .venv/bin/python benchmarks/bench_ctc.py --check    # exit 1 on a miss
    .venv/bin/python benchmarks/bench_ctc.py --clock cpu  # CPU time, not wall
    .venv/bin/python benchmarks/bench_ctc.py --profile  # where time goes

`--profile` skips the timing: it splits the compiled loss + gradient into the
native kernel and what `ctc_loss` adds around it (CPU time), and runs the
numpy beam search and the eager greedy decoder under cProfile. See
benchmarks/README.md for results.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _harness
import keras
import numpy as np
import tensorflow as tf

from serializable._backends import tensorflow_ops
from serializable.ctc import CTCLayer, ctc_loss

BATCH = 32
STEPS = 200
CLASSES = 30
MAX_LABEL = 30
FEATURES = 16
HIDDEN = 64
BEAM_WIDTH = 10
BLANK = 0
INFO = None  # the target of an informational row

NATIVE_TARGET = 1.20  # ours / tf.nn.ctc_loss with sparse labels
OPS_TARGET = 1.00  # ours / keras.ops.ctc_loss: never slower
LOSSES_TARGET = 0.20  # ours / keras.losses.CTC: at least 5x faster
TRAIN_TARGET = 1.00  # CTCLayer step / keras.ops.ctc_loss endpoint step
BEAM_TARGET = 2.00  # ctc_beam_search_numpy / TensorFlow's native decoder


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@dataclass
class Data:
    """One seeded batch, in the encodings each side expects."""

    logits: np.ndarray  # (B, T, C) float32
    log_probs: np.ndarray  # log_softmax(logits)
    label_length: np.ndarray  # (B,) int32, 1..MAX_LABEL
    input_length: np.ndarray  # (B,) int32, all T
    labels_pad_minus1: np.ndarray  # ours: padded with -1
    labels_pad_zero: np.ndarray  # keras.losses.CTC: padded with 0 (the blank)
    frames: np.ndarray  # (B, T, FEATURES), the tiny model's input


def make_data(seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((BATCH, STEPS, CLASSES)).astype("float32")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    label_length = rng.integers(1, MAX_LABEL + 1, BATCH).astype("int32")
    labels = rng.integers(1, CLASSES, (BATCH, MAX_LABEL)).astype("int32")
    inside = np.arange(MAX_LABEL)[None, :] < label_length[:, None]
    return Data(
        logits=logits,
        log_probs=log_probs.astype("float32"),
        label_length=label_length,
        input_length=np.full(BATCH, STEPS, "int32"),
        labels_pad_minus1=np.where(inside, labels, -1).astype("int32"),
        labels_pad_zero=np.where(inside, labels, 0).astype("int32"),
        frames=rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32"),
    )


# ---------------------------------------------------------------------------
# Loss + gradient sides: each returns (per-sample or mean loss, gradient)
# ---------------------------------------------------------------------------


def _with_gradient(loss_fn: Callable[[tf.Tensor], tf.Tensor]) -> Callable[..., Any]:
    """Compile `loss_fn` and the gradient of its sum w.r.t. the logits."""

    @tf.function(
        input_signature=[tf.TensorSpec((BATCH, STEPS, CLASSES), tf.float32)],
        jit_compile=False,
    )
    def step(logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = loss_fn(logits)
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, logits)

    return step


def loss_sides(data: Data) -> dict[str, Callable[[], Any]]:
    labels = tf.constant(data.labels_pad_minus1)
    labels_zero = tf.constant(data.labels_pad_zero)
    label_length = tf.constant(data.label_length)
    input_length = tf.constant(data.input_length)

    def native(logits: tf.Tensor) -> tf.Tensor:
        # The SparseTensor from the lengths, as TensorFlow's docs prescribe
        # (`tf.sparse.from_dense` would drop a real class 0).
        indices = tf.where(tf.sequence_mask(label_length, MAX_LABEL))
        sparse = tf.SparseTensor(
            indices, tf.gather_nd(labels, indices), (BATCH, MAX_LABEL)
        )
        return tf.nn.ctc_loss(
            sparse,
            logits,
            label_length=None,
            logit_length=input_length,
            logits_time_major=False,
            blank_index=BLANK,
        )

    def ours(logits: tf.Tensor) -> tf.Tensor:
        return ctc_loss(labels, logits)

    def keras_ops(logits: tf.Tensor) -> tf.Tensor:
        return keras.ops.ctc_loss(labels_zero, logits, label_length, input_length)

    keras_loss = keras.losses.CTC()

    def keras_losses(logits: tf.Tensor) -> tf.Tensor:
        return keras_loss(labels_zero, logits)

    logits = tf.constant(data.logits)
    sides = {}
    for name, fn in (
        ("tf.nn.ctc_loss", native),
        ("ours", ours),
        ("keras.ops.ctc_loss", keras_ops),
        ("keras.losses.CTC", keras_losses),
    ):
        step = _with_gradient(fn)
        sides[name] = lambda step=step: [t.numpy() for t in step(logits)]
    return sides


def check_losses(sides: dict[str, Callable[[], Any]]) -> None:
    """The four sides compute the same losses and gradients (checked once)."""
    native_loss, native_grad = sides["tf.nn.ctc_loss"]()
    ours_loss, ours_grad = sides["ours"]()
    np.testing.assert_allclose(ours_loss, native_loss, rtol=1e-5)
    np.testing.assert_allclose(ours_grad, native_grad, atol=1e-5)
    ops_loss, ops_grad = sides["keras.ops.ctc_loss"]()
    np.testing.assert_allclose(ops_loss, native_loss, rtol=1e-4)
    np.testing.assert_allclose(ops_grad, native_grad, atol=1e-3)
    mean_loss, mean_grad = sides["keras.losses.CTC"]()
    np.testing.assert_allclose(mean_loss, native_loss.mean(), rtol=1e-4)
    # keras.losses.CTC averages over the batch: its gradient is ours / B.
    np.testing.assert_allclose(mean_grad * BATCH, native_grad, atol=1e-3)


# ---------------------------------------------------------------------------
# Training step sides
# ---------------------------------------------------------------------------


class KerasCTCEndpoint(keras.layers.Layer):
    """The endpoint users write with Keras alone: `keras.losses.CTC`'s rule."""

    def call(self, y_pred: Any, labels: Any) -> Any:
        ops = keras.ops
        label_length = ops.sum(ops.cast(ops.not_equal(labels, 0), "int32"), axis=1)
        input_length = ops.full((ops.shape(y_pred)[0],), ops.shape(y_pred)[1])
        loss = ops.ctc_loss(labels, y_pred, label_length, input_length)
        self.add_loss(ops.mean(loss))
        return y_pred


def build_tiny_model(endpoint: keras.layers.Layer, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)  # same initial weights on both sides
    frames = keras.Input((STEPS, FEATURES), name="frames")
    labels = keras.Input((MAX_LABEL,), dtype="int32", name="labels")
    hidden = keras.layers.Dense(HIDDEN, activation="relu")(frames)
    y_pred = keras.layers.Dense(CLASSES)(hidden)
    outputs = endpoint(y_pred, labels)
    model = keras.Model([frames, labels], outputs)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=False)
    return model


def train_sides(data: Data) -> dict[str, Callable[[], Any]]:
    ours = build_tiny_model(CTCLayer())
    reference = build_tiny_model(KerasCTCEndpoint())
    x_ours = [data.frames, data.labels_pad_minus1]
    x_reference = [data.frames, data.labels_pad_zero]
    return {
        "keras.ops.ctc_loss endpoint": lambda: reference.train_on_batch(x_reference),
        "CTCLayer": lambda: ours.train_on_batch(x_ours),
    }


def check_training(sides: dict[str, Callable[[], Any]]) -> None:
    """Both models start from the same weights, so their first loss agrees."""
    reference = sides["keras.ops.ctc_loss endpoint"]()
    ours = sides["CTCLayer"]()
    np.testing.assert_allclose(ours, reference, rtol=1e-4)


# ---------------------------------------------------------------------------
# Decoding sides (when serializable._ctc_decode exists)
# ---------------------------------------------------------------------------


def load_decoder() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        from serializable._ctc_decode import ctc_beam_search_numpy, ctc_decode
    except ImportError:
        return None
    return ctc_decode, ctc_beam_search_numpy


def _numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_numpy(v) for v in value]
    return keras.ops.convert_to_numpy(value)


def beam_sides(
    data: Data, ctc_beam_search_numpy: Callable[..., Any]
) -> dict[str, Callable[[], Any]]:
    native = tf.function(
        lambda log_probs, lengths: tensorflow_ops.ctc_beam_search_native(
            log_probs, lengths, BEAM_WIDTH, 1, BLANK
        ),
        input_signature=[
            tf.TensorSpec((BATCH, STEPS, CLASSES), tf.float32),
            tf.TensorSpec((BATCH,), tf.int32),
        ],
    )
    return {
        "TF native beam": lambda: _numpy(native(data.log_probs, data.input_length)),
        "ctc_beam_search_numpy": lambda: _numpy(
            ctc_beam_search_numpy(
                data.log_probs, data.input_length, BEAM_WIDTH, 1, BLANK
            )
        ),
    }


def decode_sides(
    data: Data, ctc_decode: Callable[..., Any]
) -> dict[str, Callable[[], Any]]:
    logits, lengths = data.logits, data.input_length

    def keras_decode(strategy: str) -> Callable[[], Any]:
        extra = {"beam_width": BEAM_WIDTH} if strategy == "beam_search" else {}
        return lambda: _numpy(
            keras.ops.ctc_decode(logits, lengths, strategy=strategy, **extra)
        )

    def our_decode(strategy: str) -> Callable[[], Any]:
        extra = {"beam_width": BEAM_WIDTH} if strategy == "beam_search" else {}
        return lambda: _numpy(ctc_decode(logits, lengths, strategy=strategy, **extra))

    return {
        "keras.ops.ctc_decode beam": keras_decode("beam_search"),
        "ctc_decode beam": our_decode("beam_search"),
        "keras.ops.ctc_decode greedy": keras_decode("greedy"),
        "ctc_decode greedy": our_decode("greedy"),
    }


def _paths(result: Any) -> np.ndarray:
    """The best path of each sample, as a (B, T) array padded with -1."""
    paths = np.asarray(result[0])
    return paths[0] if paths.ndim == 3 else paths


def check_decoding(
    data: Data,
    beam: dict[str, Callable[[], Any]],
    decode: dict[str, Callable[[], Any]],
) -> str:
    """Compare the decoders' best paths; greedy must agree exactly.

    TensorFlow's beam decoder is not the textbook prefix beam search that the
    NumPy one implements, so their best paths may differ; the note says in
    how many rows, and scores both decoders' paths by their exact CTC
    log-probability (minus `ctc_loss`), higher is better.
    """
    native = _paths(beam["TF native beam"]())
    numpy_paths = _paths(beam["ctc_beam_search_numpy"]())
    same = {
        "numpy": numpy_paths,
        "ctc_decode": _paths(decode["ctc_decode beam"]()),
        "keras.ops.ctc_decode": _paths(decode["keras.ops.ctc_decode beam"]()),
    }
    agree = ", ".join(
        f"{name} {int(np.all(paths == native, axis=1).sum())}/{BATCH}"
        for name, paths in same.items()
    )
    exact_native = -ctc_loss(native, data.logits).numpy()
    exact_numpy = -ctc_loss(numpy_paths, data.logits).numpy()
    greedy_ours = _paths(decode["ctc_decode greedy"]())
    greedy_keras = _paths(decode["keras.ops.ctc_decode greedy"]())
    np.testing.assert_array_equal(greedy_ours, greedy_keras)
    return (
        f"beam: best path equal to TF native's in {agree} rows; exact log P of "
        f"the best path, mean: TF native {exact_native.mean():.3f}, numpy "
        f"{exact_numpy.mean():.3f} (rows where numpy's is higher: "
        f"{int((exact_numpy > exact_native + 1e-3).sum())}, lower: "
        f"{int((exact_numpy < exact_native - 1e-3).sum())}); greedy paths equal"
    )


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def measure(
    group: str,
    sides: dict[str, Callable[[], Any]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """`_harness.measure` after two warm-up calls (the first traces)."""
    return _harness.measure(group, sides, repeats, warmup=2, clock=clock)


def with_speedup(row: _harness.Row) -> dict[str, Any]:
    """The row's data with its speed-up, the inverse of its ratio."""
    return {**row.data(), "speedup": round(1 / row.ratio, 3)}


# ---------------------------------------------------------------------------
# Profile
# ---------------------------------------------------------------------------


def profile_numpy_beam(data: Data, ctc_beam_search_numpy: Any, top: int) -> None:
    def call() -> Any:
        return ctc_beam_search_numpy(
            data.log_probs, data.input_length, BEAM_WIDTH, 1, BLANK
        )

    call()
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    print("\n=== ctc_beam_search_numpy, one warm call under cProfile")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def profile_greedy(data: Data, ctc_decode: Any, top: int, calls: int = 50) -> None:
    """Eager greedy decoding: count the eager TensorFlow ops it dispatches."""

    def call() -> Any:
        return ctc_decode(data.logits, data.input_length)

    call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    eager, seconds = 0, 0.0
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (_, _, name), (_, ncalls, tottime, _, _) in entries:
        if name.endswith(("TFE_Py_FastPathExecute>", "TFE_Py_Execute>")):
            eager += ncalls
            seconds += tottime
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"\n=== ctc_decode greedy, {calls} warm eager calls under cProfile: "
        f"{eager / calls:.0f} eager TensorFlow ops per call, executing them "
        f"{seconds / total:.0%} of the time (the rest: Python dispatch around them)"
    )
    stats.sort_stats("tottime").print_stats(top)


def profile_loss(data: Data, sides: dict[str, Callable[[], Any]]) -> None:
    """Split ours - native into its parts, each compiled with its gradient.

    Ours is the native kernel plus the work `ctc_loss` adds around it: label
    preparation (no gradient) and the all-blank log-likelihood of empty labels
    (a log-softmax over the whole batch, with gradient). CPU clock.
    """
    labels = tf.constant(data.labels_pad_minus1)
    lengths = tf.constant(data.input_length)

    def all_blank(logits: tf.Tensor) -> tf.Tensor:
        frames = tf.sequence_mask(lengths, STEPS)
        blank = tf.nn.log_softmax(logits, axis=-1)[:, :, BLANK]
        return -tf.reduce_sum(tf.where(frames, blank, 0.0), axis=1)

    def label_prep(logits: tf.Tensor) -> tf.Tensor:
        not_pad = tf.cast(tf.not_equal(labels, -1), tf.int32)
        length = tf.reduce_sum(tf.math.cumprod(not_pad, axis=1), axis=1)
        inside = tf.range(MAX_LABEL)[None, :] < length[:, None]
        filled = tf.where(inside, labels, 1)
        return (
            tf.cast(tf.reduce_sum(filled, axis=1), tf.float32) + 0.0 * logits[:, 0, 0]
        )

    logits = tf.constant(data.logits)
    parts = dict(sides)
    for name, fn in (("all-blank term", all_blank), ("label prep", label_prep)):
        step = _with_gradient(fn)
        parts[name] = lambda step=step: [t.numpy() for t in step(logits)]
    parts = {
        name: parts[name]
        for name in ("tf.nn.ctc_loss", "ours", "all-blank term", "label prep")
    }
    times = measure("loss parts", parts, 21, time.process_time)
    native = _harness.best(times["tf.nn.ctc_loss"])
    print("\n=== loss + gradient, CPU time per call (minimum of 21)")
    for name, samples in times.items():
        value = _harness.best(samples)
        print(f"{name:20} {value * 1000:7.2f} ms  {value / native:6.1%} of native")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = _harness.parser(
        __doc__.splitlines()[0], profile="profile the numpy beam search and the loss"
    )
    args = parser.parse_args(argv)
    # Repeats per side; a full run takes about a minute on 2 idle cores (each
    # repeat of all groups ~3 s, the Keras sides most of it), 3 when loaded.
    repeats, clock = _harness.settings(args, 15)
    _harness.quiet()

    data = make_data()
    decoder = load_decoder()
    losses = loss_sides(data)
    if args.profile:
        profile_loss(data, losses)
        if decoder is not None:
            profile_numpy_beam(data, decoder[1], args.top)
            profile_greedy(data, decoder[0], args.top)
        return 0

    workload = (
        f"B={BATCH}, T={STEPS}, C={CLASSES} (blank {BLANK}), label lengths "
        f"1-{MAX_LABEL} (mean {data.label_length.mean():.1f}), input lengths all "
        f"{STEPS}; beam width {BEAM_WIDTH}, top_paths 1; ratio = ours / "
        "reference, speed-up = its inverse"
    )
    check_losses(losses)
    times = measure("loss + gradient", losses, repeats, clock)
    rows = [
        _harness.compare(
            "loss+grad: ours / tf.nn.ctc_loss (native, sparse)",
            times,
            "tf.nn.ctc_loss",
            "ours",
            NATIVE_TARGET,
        ),
        _harness.compare(
            "loss+grad: ours / keras.ops.ctc_loss",
            times,
            "keras.ops.ctc_loss",
            "ours",
            OPS_TARGET,
        ),
        _harness.compare(
            "loss+grad: ours / keras.losses.CTC",
            times,
            "keras.losses.CTC",
            "ours",
            LOSSES_TARGET,
        ),
    ]
    training = train_sides(data)
    check_training(training)
    times = measure("train step", training, repeats, clock)
    rows.append(
        _harness.compare(
            "train step: CTCLayer / ops.ctc_loss endpoint",
            times,
            "keras.ops.ctc_loss endpoint",
            "CTCLayer",
            TRAIN_TARGET,
        )
    )
    note = "decode rows left out: serializable._ctc_decode is not importable"
    if decoder is not None:
        ctc_decode, ctc_beam_search_numpy = decoder
        beam = beam_sides(data, ctc_beam_search_numpy)
        decode = decode_sides(data, ctc_decode)
        note = check_decoding(data, beam, decode)
        times = measure("beam search", beam, repeats, clock)
        rows.append(
            _harness.compare(
                f"beam w{BEAM_WIDTH}: numpy / TF native",
                times,
                "TF native beam",
                "ctc_beam_search_numpy",
                BEAM_TARGET,
            )
        )
        times = measure("decode", decode, repeats, clock)
        rows += [
            _harness.compare(
                f"beam w{BEAM_WIDTH}: ctc_decode / keras.ops.ctc_decode",
                times,
                "keras.ops.ctc_decode beam",
                "ctc_decode beam",
                INFO,
            ),
            _harness.compare(
                "greedy: ctc_decode / keras.ops.ctc_decode",
                times,
                "keras.ops.ctc_decode greedy",
                "ctc_decode greedy",
                INFO,
            ),
        ]
    head = _harness.header(
        args,
        repeats,
        _harness.versions("tensorflow"),
        keras.backend.backend(),
        workload=workload,
    )
    cols = _harness.columns("reference", "ours", digits=2)
    cols.insert(4, {"key": "speedup", "title": "speed-up", "format": "{:.1f}x"})
    passed = all(r.passed for r in rows)
    return _harness.report(
        "bench_ctc",
        args,
        head,
        cols,
        [with_speedup(r) for r in rows],
        passed=passed,
        footnotes=[note[0].upper() + note[1:] + "."],
    )


if __name__ == "__main__":
    sys.exit(main())
