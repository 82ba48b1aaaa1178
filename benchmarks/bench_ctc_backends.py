"""CTC on every installed backend: loss+gradient and beam search, as ratios.

    python benchmarks/bench_ctc_backends.py              # every installed backend
    python benchmarks/bench_ctc_backends.py --quick      # 5 repeats instead of 15
    python benchmarks/bench_ctc_backends.py --check      # exit 1 on a missed target
    python benchmarks/bench_ctc_backends.py --clock cpu  # process CPU time
    python benchmarks/bench_ctc_backends.py --backend jax  # one backend only
    python benchmarks/bench_ctc_backends.py --threads 1  # one intra-op thread
    python benchmarks/bench_ctc_backends.py --repeats 41

For each backend (tensorflow, jax, torch; a missing one is skipped with the
reason) a fresh process measures, at B=32, T=200, C=30, labels <= 30:

* loss + gradient (of the summed loss, with respect to the logits, fetched to
  NumPy): `serializable.ctc.ctc_loss` against `keras.ops.ctc_loss`. Both get
  the very same backend tensors as arguments (logits, 0-padded labels, label
  and input lengths; nothing baked in as a constant) and run the same way:
  the way Keras trains on that backend (`tf.function` on TensorFlow,
  `jax.jit(jax.value_and_grad(...))` on JAX, eager autograd on torch). Before
  timing, the two sides must give the same losses and gradients. Target:
  never slower, <= 1.02x (2% for timing noise).
* the same, eager (informational): both sides called directly, outside any
  `tf.function` / `jax.jit` (on torch this is the row above).
* beam search, width 10: `serializable.ctc.ctc_decode(strategy="beam_search")`
  as that backend runs it, against TensorFlow's native
  `tf.nn.ctc_beam_search_decoder` under `tf.function` in the same process,
  both from the same NumPy logits to dense NumPy paths. Target <= 2.00x.

Timing (two warm-up calls per side, tracing and compiling; interleaved
repeats; `gc.collect()` before every sample; timeit's `number` for sides
under 50 ms), the statistic (the minimum of the repeats) and the results file
(benchmarks/results/bench_ctc_backends.json) come from `_harness`.
`--threads N` gives every backend N intra-op threads (torch's default is one
per core, and its OpenMP threads suffer most when other processes share the
cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import _harness
import numpy as np

B, T, C, MAX_LABEL = 32, 200, 30, 30
LOSS_TARGET = 1.02  # "never slower", with 2% for timing noise
BEAM_TARGET = 2.00
BACKENDS = ("tensorflow", "jax", "torch")


def data(classes: int = C) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded logits, 0-padded labels (classes 1..C-1), label and input lengths.

    `bench_ctc_scale.py` uses the same batch at other numbers of classes.
    """
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(B, T, classes)).astype("float32")
    lengths = rng.integers(1, MAX_LABEL + 1, size=B).astype("int32")
    labels = np.zeros((B, MAX_LABEL), dtype="int32")
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.integers(1, classes, size=n)
    return logits, labels, lengths, np.full((B,), T, dtype="int32")


def measure(
    label: str,
    sides: dict[str, Callable[[], Any]],
    repeats: int,
    clock: Callable[[], float],
    reference: str,
    target: float | None,
) -> _harness.Row:
    """Ours against `reference`, interleaved, after two warm-up calls."""
    times = _harness.measure(label, sides, repeats, warmup=2, clock=clock)
    return _harness.compare(label, times, reference, "ours", target)


def loss_sides(backend: str, compiled: bool) -> dict[str, Callable[[], Any]]:
    """Zero-argument callables computing loss + gradient: ours and keras.ops."""
    from keras import ops

    from serializable.ctc import ctc_loss

    def ours(x: Any, labels: Any, label_length: Any, input_length: Any) -> Any:
        return ops.sum(ctc_loss(labels, x, input_length, label_length))

    def theirs(x: Any, labels: Any, label_length: Any, input_length: Any) -> Any:
        return ops.sum(
            ops.ctc_loss(labels, x, label_length, input_length, mask_index=0)
        )

    arrays = data()
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.constant(a) for a in arrays]

        def grad_of(f: Any) -> Any:
            def step(x: Any, *rest: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    value = f(x, *rest)
                return value, tape.gradient(value, x)

            run = tf.function(step) if compiled else step
            return lambda: [t.numpy() for t in run(*args)]

    elif backend == "jax":
        import jax

        args = [jax.numpy.asarray(a) for a in arrays]

        def grad_of(f: Any) -> Any:
            step = jax.value_and_grad(f)
            run = jax.jit(step) if compiled else step
            return lambda: [np.asarray(t) for t in run(*args)]

    else:
        import torch

        logits, *rest = arrays
        others = [torch.tensor(a) for a in rest]

        def grad_of(f: Any) -> Any:
            def run() -> Any:
                x = torch.tensor(logits, requires_grad=True)
                value = f(x, *others)
                value.backward()
                return [value.detach().numpy(), x.grad.numpy()]

            return run

    sides = {"ours": grad_of(ours), "keras": grad_of(theirs)}
    (loss_a, grad_a), (loss_b, grad_b) = (fn() for fn in sides.values())
    # TensorFlow: the native kernel against Keras's pure-TF recursion.
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4)
    np.testing.assert_allclose(grad_a, grad_b, atol=1e-3)
    return sides


def beam_sides() -> dict[str, Callable[[], Any]]:
    """Ours as this backend runs it, and TensorFlow's native decoder."""
    import tensorflow as tf

    from serializable.ctc import ctc_decode

    logits, _, _, input_length = data()

    def ours() -> Any:
        paths, _ = ctc_decode(
            logits, input_length, strategy="beam_search", beam_width=10
        )
        return np.asarray(paths)

    # TF's decoder wants the blank last and time-major input.
    decoder = tf.function(
        lambda x, n: tf.nn.ctc_beam_search_decoder(x, n, beam_width=10)[0][0]
    )

    def native() -> Any:
        moved = np.transpose(np.roll(logits, -1, axis=-1), (1, 0, 2))
        return tf.sparse.to_dense(decoder(moved, input_length)).numpy()

    return {"ours": ours, "TF native": native}


def set_threads(backend: str, threads: int | None) -> None:
    """Give this (child) process's backends `threads` intra-op threads."""
    if not threads:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)


def measure_backend(
    backend: str, repeats: int, clock_name: str, threads: int | None
) -> dict[str, Any]:
    set_threads(backend, threads)
    clock = _harness.CLOCKS[clock_name]
    row: dict[str, Any] = {
        "backend": backend,
        "versions": _harness.versions(backend),
    }
    if backend == "torch":
        import torch

        row["threads"] = torch.get_num_threads()
    compiled = measure(
        f"{backend} loss+grad",
        loss_sides(backend, compiled=backend != "torch"),
        repeats,
        clock,
        "keras",
        LOSS_TARGET,
    )
    row["loss_ours_ms"] = _harness.best(compiled.library) * 1000
    row["loss_keras_ms"] = _harness.best(compiled.baseline) * 1000
    row["loss_ratio"] = compiled.ratio
    if backend != "torch":  # torch already ran eagerly
        eager = measure(
            f"{backend} eager",
            loss_sides(backend, compiled=False),
            repeats,
            clock,
            "keras",
            None,
        )
        row["eager_ratio"] = eager.ratio
    beam = measure(
        f"{backend} beam", beam_sides(), repeats, clock, "TF native", BEAM_TARGET
    )
    row["beam_ours_ms"] = _harness.best(beam.library) * 1000
    row["beam_tf_ms"] = _harness.best(beam.baseline) * 1000
    row["beam_ratio"] = beam.ratio
    passed = row["loss_ratio"] <= LOSS_TARGET and row["beam_ratio"] <= BEAM_TARGET
    row["result"] = _harness.verdict(passed)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


COLUMNS = [
    {"key": "backend", "title": "backend"},
    {"key": "loss_ours_ms", "title": "loss+grad ours ms", "format": "{:.2f}"},
    {"key": "loss_keras_ms", "title": "keras.ops ms", "format": "{:.2f}"},
    {"key": "loss_ratio", "title": "ratio", "format": "{:.3f}x"},
    {"key": "eager_ratio", "title": "eager ratio", "format": "{:.2f}x",
     "none": "(same)"},
    {"key": "beam_ours_ms", "title": "beam ours ms", "format": "{:.1f}"},
    {"key": "beam_tf_ms", "title": "TF native ms", "format": "{:.1f}"},
    {"key": "beam_ratio", "title": "ratio", "format": "{:.2f}x"},
    {"key": "result", "title": "result"},
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = _harness.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=BACKENDS, action="append", help="only these backends"
    )
    parser.add_argument("--threads", type=int, help="intra-op threads per backend")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the measuring process
    args = parser.parse_args(argv)
    repeats, _ = _harness.settings(args, 15)
    if args.child:
        row = measure_backend(args.child, repeats, args.clock, args.threads)
        _harness.child_result(row)
        return 0
    rows, found = [], {}
    for backend in args.backend or BACKENDS:
        # find_spec, not import: an imported JAX or torch runtime in this
        # parent would compete for the cores with the measured child.
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: skipped, {backend} is not installed")
            continue
        command = ["--child", backend, "--clock", args.clock, "--repeats", str(repeats)]
        env = {}
        if args.threads:
            command += ["--threads", str(args.threads)]
            env["OMP_NUM_THREADS"] = str(args.threads)
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
        row = _harness.run_child(command, backend, **env)
        found.update(row.pop("versions"))
        rows.append(row)
    head = _harness.header(
        args,
        repeats,
        found,
        threads=args.threads or "default",
        workload=f"B={B} T={T} C={C} labels<={MAX_LABEL}; intra-op threads: "
        f"{args.threads or 'default'}; targets: loss+grad <= {LOSS_TARGET:.2f}x "
        f"keras.ops.ctc_loss on the same backend, same inputs and mode; beam <= "
        f"{BEAM_TARGET:.2f}x TF's native decoder; the eager ratio is informational",
    )
    passed = all(row["result"] == "PASS" for row in rows)
    return _harness.report(
        "bench_ctc_backends", args, head, COLUMNS, rows, passed=passed
    )


if __name__ == "__main__":
    sys.exit(main())
