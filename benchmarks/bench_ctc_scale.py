"""CTC at the field's scale: loss at C=30/5000, pruned beam search, edit distance.

    python benchmarks/bench_ctc_scale.py loss      # every backend, one process each
    python benchmarks/bench_ctc_scale.py beam      # vs TensorFlow's decoder
    python benchmarks/bench_ctc_scale.py edit      # vs editdistance, rapidfuzz
    python benchmarks/bench_ctc_scale.py beam --configs random:500:1000:10
    python benchmarks/bench_ctc_scale.py beam --quick   # no width 100 at C=1000

Timing (warm-up, interleaved repeats, `gc.collect()` before every sample,
timeit's `number` for short sides), the statistic (the minimum of the
repeats) and the results files (benchmarks/results/bench_ctc_scale.<part>.json)
come from `_harness`. `--repeats` sets the repeats (loss 11, edit 5, beam 3
at C=30; at C=1000 every beam side is timed once, without warm-up).

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

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import _harness
import numpy as np
from bench_ctc_backends import data as loss_data

BACKENDS = ("tensorflow", "jax", "torch")
LOSS_TARGET = 1.05
EDIT_TARGET = 10.0
PRUNED = {"token_min_log_prob": -5.0, "beam_threshold": 25.0}
SIDES_EDIT = ("editdistance", "rapidfuzz", "ours")


# ---------------------------------------------------------------- loss


def loss_backend(backend: str, repeats: int, clock: Callable[[], float]) -> Any:
    return [loss_row(backend, classes, repeats, clock) for classes in (30, 5000)]


def loss_row(
    backend: str, classes: int, repeats: int, clock: Callable[[], float]
) -> dict[str, Any]:
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
    times = _harness.measure(f"{backend} C={classes}", sides, repeats, clock=clock)
    row = _harness.compare(f"{backend} C={classes}", times, reference, "ours", 1.05)
    return {
        "backend": backend,
        "classes": classes,
        "reference": reference,
        "reference_ms": round(_harness.best(row.baseline) * 1000, 3),
        "ours_ms": round(_harness.best(row.library) * 1000, 3),
        "ratio": round(row.ratio, 4),
        "target": LOSS_TARGET,
        "result": _harness.verdict(row.passed),
    }


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


def beam_table(
    repeats: int, clock: Callable[[], float], only: list[str], quick: bool
) -> list[dict[str, Any]]:
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
    rows = []
    for kind in ("peaked", "random"):
        for steps in (200, 500):
            for classes in (30, 1000):
                logits = beam_logits(kind, steps, classes)
                shifted = logits - logits.max(-1, keepdims=True)
                lp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
                for width in (10, 100):
                    big = classes == 1000
                    if only and f"{kind}:{steps}:{classes}:{width}" not in only:
                        continue
                    if big and width == 100 and quick:
                        continue
                    others = dict(extra)
                    if big:  # 3x TF's time (over a minute a call) at C=1000
                        others.pop("fast-ctc-decode", None)
                    sides, outputs = beam_sides(
                        tf, lp, width, settings, others, ctc_beam_search_numpy
                    )
                    # At C=1000 TensorFlow takes 15 s to minutes a call: one
                    # timed call per side, no warm-up (tracing is ~0.1 s).
                    label = f"{kind} T={steps} C={classes} width {width}"
                    times = {
                        name: _harness.best(values)
                        for name, values in _harness.measure(
                            label,
                            sides,
                            1 if big else repeats,
                            warmup=0 if big else 1,
                            number=1 if big else None,
                            clock=clock,
                        ).items()
                    }
                    base = outputs["TF native"]
                    base_exact = _exact(lp, base)
                    for name in sides:
                        paths = outputs[name]
                        same = np.mean(np.all(paths == base, axis=1))
                        diff = np.mean(_exact(lp, paths) - base_exact)
                        rows.append(
                            {
                                "logits": kind,
                                "T": steps,
                                "C": classes,
                                "width": width,
                                "side": name,
                                "ms": round(times[name] * 1000, 1),
                                "ms_per_tf": round(times[name] / times["TF native"], 4),
                                "top1_tf": round(float(same), 4),
                                "logp_diff": round(float(diff), 4),
                            }
                        )
    return rows


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


def edit_backend(backend: str, repeats: int, clock: Callable[[], float]) -> Any:
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
    times = _harness.measure(f"{backend} edit", sides, repeats, clock=clock)
    row = _harness.compare(
        f"{backend} edit", times, "editdistance", "ours", EDIT_TARGET
    )
    return [
        {
            "backend": backend,
            **{f"{n}_ms": round(_harness.best(t) * 1000, 3) for n, t in times.items()},
            "ratio": round(row.ratio, 4),
            "target": EDIT_TARGET,
            "result": _harness.verdict(row.passed),
        }
    ]


BACKEND = {"key": "backend", "title": "backend"}
MS = {"format": "{:.1f}"}
RATIO = {"key": "ratio", "format": "{:.2f}x"}
VERDICT = [
    {"key": "target", "title": "target", "format": "<= {:.2f}x"},
    {"key": "result", "title": "result"},
]
COLUMNS = {
    "loss": [
        BACKEND,
        {"key": "classes", "title": "C"},
        {"key": "reference", "title": "reference", "align": "left"},
        {**MS, "key": "reference_ms", "title": "reference ms"},
        {**MS, "key": "ours_ms", "title": "ours ms"},
        {**RATIO, "title": "ours / reference"},
        *VERDICT,
    ],
    "edit": [
        BACKEND,
        *({**MS, "key": f"{n}_ms", "title": f"{n} ms"} for n in SIDES_EDIT),
        {**RATIO, "title": "ours / editdistance"},
        *VERDICT,
    ],
    "beam": [
        {"key": "logits", "title": "logits"},
        {"key": "T", "title": "T"},
        {"key": "C", "title": "C"},
        {"key": "width", "title": "width"},
        {"key": "side", "title": "side", "align": "left"},
        {"key": "ms", "title": "ms", "format": "{:.0f}"},
        {"key": "ms_per_tf", "title": "ms / TF", "format": "{:.2f}"},
        {"key": "top1_tf", "title": "top-1 = TF", "format": "{:.2f}"},
        {"key": "logp_diff", "title": "mean exact log P - TF's", "format": "{:+.3f}"},
    ],
}
WORKLOAD = {
    "loss": "Loss + gradient of the summed loss, B=32, T=200, labels <= 30. "
    "TensorFlow: against the native kernel, both under tf.function; JAX: both "
    "in jax.jit(jax.value_and_grad); torch: eager autograd",
    "edit": "edit_distance on 10,000 pairs of 60 labels (30 classes), eager, "
    "against editdistance.eval and rapidfuzz's Levenshtein.distance looped "
    "over the pairs as lists",
    "beam": "B=8; random N(0, 1) or peaked logits; one timed call per side, "
    "no warm-up, at C=1000",
}
CHILDREN = {"loss": loss_backend, "edit": edit_backend}


def main(argv: list[str] | None = None) -> int:
    parser = _harness.parser(__doc__.splitlines()[0])
    parser.add_argument("part", choices=("loss", "beam", "edit"))
    parser.add_argument(
        "--configs",
        default="",
        help="beam rows to run, comma-separated logits:T:C:width "
        "(e.g. random:500:1000:10,peaked:500:30:100)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the measuring process
    args = parser.parse_args(argv)
    repeats = args.repeats or {"loss": 11, "edit": 5, "beam": 3}[args.part]
    if args.quick and not args.repeats:
        repeats = max(1, repeats // 2)
    clock = _harness.CLOCKS[args.clock]
    if args.child:
        rows = CHILDREN[args.part](args.child, repeats, clock)
        _harness.child_result({"rows": rows, "versions": _harness.versions(args.child)})
        return 0
    rows, found = [], {}
    if args.part == "beam":
        os.environ["KERAS_BACKEND"] = "tensorflow"
        only = [c for c in args.configs.split(",") if c]
        rows = beam_table(repeats, clock, only, args.quick)
        found = _harness.versions("tensorflow")
    else:
        for backend in BACKENDS:
            command = [args.part, "--child", backend, "--repeats", str(repeats)]
            result = _harness.run_child([*command, "--clock", args.clock], backend)
            rows += result["rows"]
            found.update(result["versions"])
    head = _harness.header(args, repeats, found, workload=WORKLOAD[args.part])
    passed = all(row.get("result", "PASS") == "PASS" for row in rows)
    name = f"bench_ctc_scale.{args.part}"
    return _harness.report(name, args, head, COLUMNS[args.part], rows, passed=passed)


if __name__ == "__main__":
    sys.exit(main())
