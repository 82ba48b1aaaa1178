"""CTC on every installed backend: loss+gradient and beam search, as ratios.

    python benchmarks/bench_ctc_backends.py              # every installed backend
    python benchmarks/bench_ctc_backends.py --quick      # 5 repeats instead of 15
    python benchmarks/bench_ctc_backends.py --check      # exit 1 on a missed target
    python benchmarks/bench_ctc_backends.py --clock cpu  # process CPU time
    python benchmarks/bench_ctc_backends.py --backend jax  # one backend only
    python benchmarks/bench_ctc_backends.py --threads 1  # one intra-op thread
    python benchmarks/bench_ctc_backends.py --repeats 41 --stat min

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

Sides are warmed up (tracing, compiling), then measured in interleaved
repeats whose order alternates, with `gc.collect()` before every sample; a
side under 50 ms is called several times per sample (timeit's `number`).
The table compares medians (`--stat min`: the minima, timeit's convention,
which load from other processes disturbs least). `--threads N` gives every
backend N intra-op threads (torch's default is one per core, and its OpenMP
threads suffer most when other processes share the cores).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

B, T, C, MAX_LABEL = 32, 200, 30, 30
LOSS_TARGET = 1.02  # "never slower", with 2% for timing noise
BEAM_TARGET = 2.00
SAMPLE_SECONDS = 0.05
BACKENDS = ("tensorflow", "jax", "torch")
CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "cpu": time.process_time,
}


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded logits, 0-padded labels (classes 1..29), label and input lengths."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(B, T, C)).astype("float32")
    lengths = rng.integers(1, MAX_LABEL + 1, size=B).astype("int32")
    labels = np.zeros((B, MAX_LABEL), dtype="int32")
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.integers(1, C, size=n)
    return logits, labels, lengths, np.full((B,), T, dtype="int32")


STATS: dict[str, Callable[[list[float]], float]] = {
    "median": statistics.median,
    "min": min,
}


def measure(
    sides: dict[str, Callable[[], Any]],
    repeats: int,
    clock: Callable[[], float],
    stat: Callable[[list[float]], float],
) -> dict[str, float]:
    """Seconds per call of each side (`stat` of the repeats), interleaved."""
    number = {}
    for name, fn in sides.items():
        fn()  # traces / compiles
        start = time.perf_counter()
        fn()
        number[name] = max(1, math.ceil(SAMPLE_SECONDS / (time.perf_counter() - start)))
    names = list(sides)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(repeats):
        for name in names if index % 2 == 0 else names[::-1]:
            fn, count = sides[name], number[name]
            gc.collect()
            start = clock()
            for _ in range(count):
                fn()
            samples[name].append((clock() - start) / count)
    for name in names:
        listed = ", ".join(f"{t * 1000:.2f}" for t in samples[name])
        print(f"  {name}: [{listed}] ms (x{number[name]})", file=sys.stderr)
    return {name: stat(samples[name]) for name in names}


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


def versions(backend: str) -> str:
    import keras

    module = importlib.import_module(backend)
    threads = ""
    if backend == "torch":
        threads = f", {module.get_num_threads()} intra-op threads"
    return f"keras {keras.__version__}, {backend} {module.__version__}{threads}"


def measure_backend(
    backend: str, repeats: int, clock_name: str, stat_name: str, threads: int | None
) -> dict[str, Any]:
    set_threads(backend, threads)
    clock, stat = CLOCKS[clock_name], STATS[stat_name]
    print(f"{backend}:", file=sys.stderr)
    row: dict[str, Any] = {"backend": backend, "versions": versions(backend)}
    compiled = measure(
        loss_sides(backend, compiled=backend != "torch"), repeats, clock, stat
    )
    row["loss_ours_ms"], row["loss_keras_ms"] = (
        compiled["ours"] * 1000,
        compiled["keras"] * 1000,
    )
    if backend != "torch":  # torch already ran eagerly
        eager = measure(loss_sides(backend, compiled=False), repeats, clock, stat)
        row["eager_ours_ms"], row["eager_keras_ms"] = (
            eager["ours"] * 1000,
            eager["keras"] * 1000,
        )
    beam = measure(beam_sides(), repeats, clock, stat)
    row["beam_ours_ms"], row["beam_tf_ms"] = (
        beam["ours"] * 1000,
        beam["TF native"] * 1000,
    )
    return row


def print_table(
    rows: list[dict[str, Any]],
    repeats: int,
    clock: str,
    stat: str,
    threads: int | None,
) -> bool:
    """Print one row per backend; True when every target is met."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    print(
        f"python {platform.python_version()}  cpus {cpus}  "
        f"B={B} T={T} C={C} labels<={MAX_LABEL}  {stat} of {repeats} repeats, "
        f"{clock} clock, {threads or 'default'} intra-op threads"
    )
    for row in rows:
        print(f"  {row['backend']}: {row['versions']}")
    print(
        f"{'backend':<11}{'loss+grad ours':>15}{'keras.ops':>11}{'ratio':>7}"
        f"{'eager ratio':>12}{'beam ours':>11}{'TF native':>11}{'ratio':>7}"
        "  result"
    )
    passed = True
    for row in rows:
        loss = row["loss_ours_ms"] / row["loss_keras_ms"]
        beam = row["beam_ours_ms"] / row["beam_tf_ms"]
        eager = (
            f"{row['eager_ours_ms'] / row['eager_keras_ms']:.2f}x"
            if "eager_ours_ms" in row
            else "(same)"
        )
        ok = loss <= LOSS_TARGET and beam <= BEAM_TARGET
        passed &= ok
        print(
            f"{row['backend']:<11}{row['loss_ours_ms']:>12.2f} ms"
            f"{row['loss_keras_ms']:>8.2f} ms{loss:>6.3f}x{eager:>12}"
            f"{row['beam_ours_ms']:>8.1f} ms{row['beam_tf_ms']:>8.1f} ms"
            f"{beam:>6.2f}x  {'PASS' if ok else 'FAIL'}"
        )
    print(
        f"targets: loss+grad <= {LOSS_TARGET:.2f}x keras.ops.ctc_loss on the same "
        f"backend, same inputs and mode; beam <= {BEAM_TARGET:.2f}x TF's native "
        "decoder; the eager ratio is informational"
    )
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats, not 15")
    parser.add_argument("--repeats", type=int, help="repeats per side")
    parser.add_argument("--stat", choices=sorted(STATS), default="median")
    parser.add_argument("--check", action="store_true", help="exit 1 on a miss")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument(
        "--backend", choices=BACKENDS, action="append", help="only these backends"
    )
    parser.add_argument("--threads", type=int, help="intra-op threads per backend")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the measuring process
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 15)
    if args.child:
        row = measure_backend(args.child, repeats, args.clock, args.stat, args.threads)
        print("@@" + json.dumps(row))
        return 0
    rows = []
    for backend in args.backend or BACKENDS:
        # find_spec, not import: an imported JAX or torch runtime in this
        # parent would compete for the cores with the measured child.
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: skipped, {backend} is not installed")
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--child", backend, "--clock", args.clock]
        command += ["--stat", args.stat, "--repeats", str(repeats)]
        if args.threads:
            command += ["--threads", str(args.threads)]
            env["OMP_NUM_THREADS"] = str(args.threads)
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            ).strip()
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        sys.stderr.write(result.stderr)
        lines = [x for x in result.stdout.splitlines() if x.startswith("@@")]
        if result.returncode or not lines:
            print(f"{backend}: failed (exit {result.returncode})")
            return 1
        rows.append(json.loads(lines[-1][2:]))
    passed = print_table(rows, repeats, args.clock, args.stat, args.threads)
    return 1 if (args.check and not passed) else 0


if __name__ == "__main__":
    sys.exit(main())
