"""CTC at the field's scale: loss at C=30/5000, pruned beam search, edit distance.

    python benchmarks/bench_ctc_scale.py loss      # every backend, one process each
    python benchmarks/bench_ctc_scale.py beam      # vs TensorFlow's decoder
    python benchmarks/bench_ctc_scale.py edit      # vs editdistance, rapidfuzz
    python benchmarks/bench_ctc_scale.py all

CPU only (no GPU was lent to this work). The machine it was measured on has
2 cores shared with other jobs, so every figure is the minimum over repeats
(timeit's convention: load from other processes only ever adds time), and
the sides of each ratio are measured interleaved, in one process.

* loss: loss + gradient of the summed loss at B=32, T=200, labels <= 30,
  C=30 and C=5000. TensorFlow: `serializable.ctc.ctc_loss` against
  `tf.nn.ctc_loss` with SparseTensor labels (the native kernel), both under
  `tf.function`. JAX: against `keras.ops.ctc_loss`, both in
  `jax.jit(jax.value_and_grad(...))`. torch: against `keras.ops.ctc_loss`,
  eager autograd. Target <= 1.05x.
* beam: B=8 on random (N(0,1)) and peaked (a trained-model-like path:
  one class per frame 8 nats above the rest) logits, T=200/500,
  C=30/1000, widths 10/100. Sides: `tf.nn.ctc_beam_search_decoder` (under
  `tf.function`) and `ctc_beam_search_numpy` with the pruning settings
  named in the table; fast-ctc-decode and pyctcdecode where importable
  (PYTHONPATH=/tmp/ctc-extra). For each side: time, top-1 agreement with
  TensorFlow's labelling, and the mean difference of the exact log-probability
  (forward algorithm) of its top-1 labelling against TensorFlow's.
* edit: 10,000 pairs of 60 labels (30 classes): `edit_distance` eagerly on
  this backend against `editdistance.eval` and rapidfuzz's Levenshtein over
  the pairs (as lists). Target <= 10x editdistance.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

REPEATS = int(os.environ.get("REPEATS", "5"))


def best_of(
    sides: dict[str, Callable[[], Any]], repeats: int = REPEATS, warm: bool = True
) -> dict:
    """Minimum wall time of each side over interleaved repeats (after a warm-up)."""
    for fn in sides.values() if warm else ():
        fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(repeats):
        names = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in names:
            start = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


# ---------------------------------------------------------------- loss


def loss_data(classes: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    batch, steps, most = 32, 200, 30
    logits = rng.normal(size=(batch, steps, classes)).astype("float32")
    lengths = rng.integers(1, most + 1, size=batch).astype("int32")
    labels = np.zeros((batch, most), dtype="int32")
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.integers(1, classes, size=n)
    return logits, labels, lengths, np.full((batch,), steps, dtype="int32")


def loss_backend(backend: str) -> None:
    os.environ["KERAS_BACKEND"] = backend
    for classes in (30, 5000):
        loss_row(backend, classes)


def loss_row(backend: str, classes: int) -> None:
    import keras

    from serializable.ctc import ctc_loss

    logits, labels, lengths, inputs = loss_data(classes)
    padded = np.where(np.arange(30)[None, :] < lengths[:, None], labels, -1)
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(logits)

        def native(x: Any) -> Any:
            idx = tf.where(tf.sequence_mask(lengths, 30))
            sparse = tf.SparseTensor(idx, tf.gather_nd(labels, idx), (32, 30))
            return tf.nn.ctc_loss(
                sparse, x, None, inputs, logits_time_major=False, blank_index=0
            )

        def ours(x: Any) -> Any:
            return ctc_loss(padded, x, inputs, lengths)

        def graded(fn: Callable[[Any], Any]) -> Callable[[], Any]:
            @tf.function
            def step(x: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    total = tf.reduce_sum(fn(x))
                return total, tape.gradient(total, x)

            return lambda: [v.numpy() for v in step(x)]

        reference = "tf.nn.ctc_loss (native, sparse)"
        sides = {reference: graded(native), "ours": graded(ours)}
    elif backend == "jax":
        import jax

        x = jax.numpy.asarray(logits)

        def graded(fn: Callable[[Any], Any]) -> Callable[[], Any]:
            step = jax.jit(jax.value_and_grad(lambda x: fn(x).sum()))
            return lambda: [np.asarray(v) for v in step(x)]

        reference = "keras.ops.ctc_loss (jit)"
        sides = {
            reference: graded(lambda x: keras.ops.ctc_loss(labels, x, lengths, inputs)),
            "ours": graded(lambda x: ctc_loss(padded, x, inputs, lengths)),
        }
    else:
        import torch

        def graded(fn: Callable[[Any], Any]) -> Callable[[], Any]:
            def step() -> Any:
                x = torch.tensor(logits, requires_grad=True)
                total = fn(x).sum()
                total.backward()
                return total.item(), x.grad.numpy()

            return step

        t_labels, t_lengths = torch.tensor(labels), torch.tensor(lengths)
        t_inputs, t_padded = torch.tensor(inputs), torch.tensor(padded)
        reference = "keras.ops.ctc_loss (eager)"
        sides = {
            reference: graded(
                lambda x: keras.ops.ctc_loss(t_labels, x, t_lengths, t_inputs)
            ),
            "ours": graded(lambda x: ctc_loss(t_padded, x, t_inputs, t_lengths)),
        }
    a, b = sides[reference](), sides["ours"]()
    np.testing.assert_allclose(a[0], b[0], rtol=1e-4)
    np.testing.assert_allclose(a[1], b[1], atol=1e-4)
    times = best_of(sides, max(REPEATS, 7))
    ratio = times["ours"] / times[reference]
    print(
        f"| {backend} | {classes} | {reference} | {times[reference] * 1e3:.1f} "
        f"| {times['ours'] * 1e3:.1f} | {ratio:.2f}x |",
        flush=True,
    )


# ---------------------------------------------------------------- beam


def beam_logits(kind: str, steps: int, classes: int, batch: int = 8) -> np.ndarray:
    rng = np.random.default_rng(steps * classes)
    logits = rng.normal(size=(batch, steps, classes)).astype("float32")
    if kind == "peaked":
        # A trained-model-like output: one class per frame well above the rest,
        # blank (class 0) on about half the frames, labels held 1-3 frames.
        path = rng.integers(1, classes, size=(batch, steps))
        path = np.where(rng.random((batch, steps)) < 0.5, 0, path)
        np.put_along_axis(logits, path[:, :, None], 8.0, axis=2)
    return logits


def _exact(log_probs: np.ndarray, paths: np.ndarray) -> np.ndarray:
    from serializable._ctc_decode import _labelling_log_prob

    lengths = np.full(log_probs.shape[0], log_probs.shape[1])
    return _labelling_log_prob(log_probs, lengths, paths, 0)


def beam_table() -> None:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf

    from serializable._ctc_decode import ctc_beam_search_numpy

    extra: dict[str, Any] = {}
    try:
        import fast_ctc_decode

        extra["fast-ctc-decode"] = fast_ctc_decode
    except ImportError as err:
        print(f"fast-ctc-decode not importable: {err}")
    try:
        import pyctcdecode

        extra["pyctcdecode"] = pyctcdecode
    except ImportError as err:
        print(f"pyctcdecode not importable: {err}")

    settings = {
        "ours, no pruning": {},
        "ours, pruned (-5, 25)": PRUNED,
    }
    print(
        "| logits | T | C | width | side | ms | ms / TF | top-1 = TF | "
        "mean exact log P - TF's |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    # e.g. CONFIGS=random:500:1000:10,peaked:500:30:100 (logits:T:C:width)
    only = os.environ.get("CONFIGS", "").split(",")
    for kind in ("peaked", "random"):
        for steps in (200, 500):
            for classes in (30, 1000):
                logits = beam_logits(kind, steps, classes)
                shifted = logits - logits.max(-1, keepdims=True)
                lp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
                for width in (10, 100):
                    big = classes == 1000
                    if only != [""] and f"{kind}:{steps}:{classes}:{width}" not in only:
                        continue
                    if big and width == 100 and os.environ.get("QUICK"):
                        continue
                    others = dict(extra)
                    if big:  # 3x TF's time (over a minute a call) at C=1000
                        others.pop("fast-ctc-decode", None)
                    sides, outputs = beam_sides(
                        tf, lp, width, settings, others, ctc_beam_search_numpy
                    )
                    # At C=1000 TensorFlow takes 15 s to minutes a call: one
                    # timed call per side, no warm-up (tracing is ~0.1 s).
                    times = best_of(sides, 1, warm=False) if big else best_of(sides, 3)
                    base = outputs["TF native"]
                    base_exact = _exact(lp, base)
                    for name in sides:
                        paths = outputs[name]
                        same = np.mean(np.all(paths == base, axis=1))
                        diff = np.mean(_exact(lp, paths) - base_exact)
                        print(
                            f"| {kind} | {steps} | {classes} | {width} | {name} | "
                            f"{times[name] * 1e3:.0f} | "
                            f"{times[name] / times['TF native']:.2f} | "
                            f"{same:.2f} | {diff:+.3f} |",
                            flush=True,
                        )


PRUNED = {"token_min_log_prob": -5.0, "beam_threshold": 25.0}


def _dense(rows: list[list[int]], steps: int) -> np.ndarray:
    out = np.full((len(rows), steps), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def beam_sides(tf, lp, width, settings, extra, decoder) -> tuple[dict, dict]:
    batch, steps, classes = lp.shape
    outputs: dict[str, np.ndarray] = {}
    moved = np.concatenate([lp[:, :, 1:], lp[:, :, :1]], axis=2)  # blank last
    time_major = tf.constant(moved.transpose(1, 0, 2))
    lengths = tf.fill([batch], steps)

    @tf.function
    def tf_decode(x: Any) -> Any:
        decoded, _ = tf.nn.ctc_beam_search_decoder(x, lengths, beam_width=width)
        return tf.sparse.to_dense(decoded[0], default_value=-1)

    def native() -> None:
        dense = tf_decode(time_major).numpy()
        paths = np.where(dense >= 0, dense + 1, -1)
        outputs["TF native"] = _dense([r[r >= 0].tolist() for r in paths], steps)

    sides: dict[str, Callable[[], Any]] = {"TF native": native}
    for name, kwargs in settings.items():

        def ours(name: str = name, kwargs: dict = kwargs) -> None:
            paths, _ = decoder(lp, np.full(batch, steps), width, 1, 0, **kwargs)
            outputs[name] = paths[0].astype(np.int64)

        sides[name] = ours
    probs = np.exp(lp).astype(np.float32)
    if "fast-ctc-decode" in extra:
        alphabet = ["_"] + [chr(0x4E00 + i) for i in range(classes - 1)]

        def fast() -> None:
            rows = []
            for b in range(batch):
                text, _ = extra["fast-ctc-decode"].beam_search(
                    probs[b], alphabet, beam_size=width, beam_cut_threshold=0.0
                )
                rows.append([alphabet.index(c) for c in text])
            outputs["fast-ctc-decode"] = _dense(rows, steps)

        sides["fast-ctc-decode"] = fast
    if "pyctcdecode" in extra:
        labels = [""] + [chr(0x4E00 + i) for i in range(classes - 1)]
        index = {c: i for i, c in enumerate(labels)}
        decoder_py = extra["pyctcdecode"].build_ctcdecoder(labels)

        def pyctc() -> None:
            rows = []
            for b in range(batch):
                text = decoder_py.decode(lp[b], beam_width=width)
                rows.append([index[c] for c in text])
            outputs["pyctcdecode (defaults)"] = _dense(rows, steps)

        sides["pyctcdecode (defaults)"] = pyctc
    return sides, outputs


# ---------------------------------------------------------------- edit


def edit_backend(backend: str) -> None:
    os.environ["KERAS_BACKEND"] = backend
    import editdistance
    from rapidfuzz.distance import Levenshtein

    from serializable.ctc import edit_distance

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 30, size=(10_000, 60)).astype("int32")
    hyp = rng.integers(0, 30, size=(10_000, 60)).astype("int32")
    pairs = list(zip(truth.tolist(), hyp.tolist(), strict=True))
    sides = {
        "editdistance": lambda: [editdistance.eval(a, b) for a, b in pairs],
        "rapidfuzz": lambda: [Levenshtein.distance(a, b) for a, b in pairs],
        "ours": lambda: np.asarray(edit_distance(truth, hyp)),
    }
    ref = np.array(sides["editdistance"]())
    assert np.array_equal(np.asarray(sides["ours"]()), ref)
    times = best_of(sides)
    print(
        f"| {backend} | {times['editdistance'] * 1e3:.1f} | "
        f"{times['rapidfuzz'] * 1e3:.1f} | {times['ours'] * 1e3:.1f} | "
        f"{times['ours'] / times['editdistance']:.2f}x |",
        flush=True,
    )


def main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else "all"
    if what.startswith("_"):  # a child process: `_loss jax`, `_edit torch`
        {"_loss": loss_backend, "_edit": edit_backend}[what](argv[2])
        return 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if what in ("loss", "all"):
        print("| backend | C | reference | reference ms | ours ms | ours / reference |")
        print("|---|---|---|---|---|---|")
        for backend in ("tensorflow", "jax", "torch"):
            subprocess.run([sys.executable, __file__, "_loss", backend], env=env)
    if what in ("edit", "all"):
        print(
            "| backend | editdistance ms | rapidfuzz ms | ours ms "
            "| ours / editdistance |"
        )
        print("|---|---|---|---|---|")
        for backend in ("tensorflow", "jax", "torch"):
            subprocess.run([sys.executable, __file__, "_edit", backend], env=env)
    if what in ("beam", "all"):
        beam_table()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
