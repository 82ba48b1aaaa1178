"""The timing harness, statistic and result files every benchmark script shares.

One method for every table:

- **Same process, interleaved.** The sides of a comparison run in one
  process; each repeat runs every side once, in alternating order (forward,
  then reversed, ...), so slow drift in machine load reaches all sides alike.
- **Warm-up.** Each side runs `warmup` times untimed first (tracing,
  compiling, caches); the first call's time is listed on stderr.
- **`gc.collect()` before every sample**, outside the timing.
- **timeit's `number`.** A side faster than `SAMPLE_SECONDS` (judged on its
  last warm-up call) is called several times per sample and the sample
  divided by that count, so one scheduler hiccup cannot double a 15 ms sample.
- **One statistic: the minimum of the repeats** (timeit's convention: load
  from other processes only ever adds time, so the minimum comes closest to
  each side's own cost). The median ratio is printed on stderr beside it as a
  diagnostic (a wide gap between the two means a noisy run), never in a table.

Each script ends with `report()`: the table on stdout and, unless
`--no-save`, the same table as data in `benchmarks/results/<name>.json`,
which `tools/bench_report.py` renders into benchmarks/README.md.

Keras and the backends are imported lazily, so a parent process that only
starts one child per backend stays light; importing this module makes
TensorFlow the default backend (`KERAS_BACKEND`) and quiets its C++ logs.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "tools"))
import bench_report  # noqa: E402  (tools/ is not a package)

STATISTIC = "min"
SAMPLE_SECONDS = 0.05  # a faster side repeats its call to fill a sample this long
CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "cpu": time.process_time,  # CPU time of the process, all threads
}
CHILD_MARK = "@@"  # how a child process's result line starts


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


@dataclass
class Side:
    """A timed call; `prepare` runs before it and `after` after it, untimed."""

    call: Callable[[], object]
    prepare: Callable[[], object] | None = None
    after: Callable[[], object] | None = None

    def run(self, clock: Callable[[], float], number: int = 1) -> float:
        """Seconds per call of `number` calls in a row."""
        if self.prepare is not None:
            self.prepare()
        gc.collect()  # start without the previous call's garbage
        start = clock()
        for _ in range(number):
            self.call()
        elapsed = (clock() - start) / number
        if self.after is not None:
            self.after()
        return elapsed


def _ms(times: Iterable[float]) -> str:
    values = list(times)
    digits = 1 if min(values) < 0.01 else 0
    return "[" + ", ".join(f"{t * 1000:.{digits}f}" for t in values) + "] ms"


def measure(
    label: str,
    sides: Mapping[str, Callable[[], object] | Side],
    repeats: int,
    *,
    warmup: int = 1,
    blocks: int = 1,
    number: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time every side `repeats` times; seconds per call, one value a repeat.

    A repeat is `blocks` interleaved rounds whose times are summed (more
    rounds spread one repeat of a long workload over more of the run).
    `number` fixes the calls per sample; by default a side without
    `prepare`/`after` fills `SAMPLE_SECONDS`, one with them calls once.
    """
    named = {n: s if isinstance(s, Side) else Side(s) for n, s in sides.items()}
    counts: dict[str, int] = {}
    first: dict[str, float] = {}
    for name, side in named.items():
        last = None
        for index in range(warmup):
            last = side.run(time.perf_counter)
            if index == 0:
                first[name] = last
        plain = side.prepare is None and side.after is None
        if number is not None or last is None or not plain:
            counts[name] = number or 1
        else:
            counts[name] = max(1, math.ceil(SAMPLE_SECONDS / max(last, 1e-9)))
    if first:
        listed = ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in first.items())
        _log(f"  {label}: first calls {listed} (not in the table)")
    names = list(named)
    times: dict[str, list[float]] = {name: [] for name in names}
    rounds = 0
    for _ in range(repeats):
        totals = dict.fromkeys(names, 0.0)
        for _ in range(blocks):
            for name in names if rounds % 2 == 0 else names[::-1]:
                totals[name] += named[name].run(clock, counts[name])
            rounds += 1
        for name in names:
            times[name].append(totals[name])
    for name in names if repeats else ():
        calls = f" (x{counts[name]} per sample)" if counts[name] > 1 else ""
        median = statistics.median(times[name]) * 1000
        _log(f"  {label}: {name} {_ms(times[name])}{calls}, median {median:.1f} ms")
    return times


def best(times: Sequence[float]) -> float:
    """The statistic every table uses: the minimum of the repeats."""
    return min(times)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Comparison rows
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One comparison: the repeats of a baseline and of the library's side.

    `target` is the highest passing ratio library / baseline; None makes the
    row informational.
    """

    name: str
    baseline: list[float]
    library: list[float]
    target: float | None

    @property
    def ratio(self) -> float:
        return best(self.library) / best(self.baseline)

    @property
    def passed(self) -> bool:
        return self.target is None or self.ratio <= self.target

    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "baseline_ms": round(best(self.baseline) * 1000, 3),
            "library_ms": round(best(self.library) * 1000, 3),
            "ratio": round(self.ratio, 4),
            "target": self.target,
            "result": None if self.target is None else verdict(self.passed),
            "baseline_samples_ms": [round(t * 1000, 3) for t in self.baseline],
            "library_samples_ms": [round(t * 1000, 3) for t in self.library],
        }


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def compare(
    name: str,
    times: Mapping[str, list[float]],
    baseline: str,
    library: str,
    target: float | None,
) -> Row:
    """A row from two sides of `measure`'s result; logs both ratios."""
    row = Row(name, times[baseline], times[library], target)
    median = statistics.median(row.library) / statistics.median(row.baseline)
    _log(f"  {name}: ratio {row.ratio:.3f}x (min; median {median:.3f}x)")
    return row


class Case(Protocol):
    """A comparison: a name, a target and two sides, the baseline first."""

    name: str
    target: float | None

    def sides(self) -> Mapping[str, Callable[[], object] | Side]: ...


def time_cases(
    cases: Iterable[Case], repeats: int, clock: Callable[[], float]
) -> list[Row]:
    """Measure and compare each case's two sides (baseline, library)."""
    rows = []
    for case in cases:
        sides = case.sides()
        baseline, library = sides
        times = measure(case.name, sides, repeats, clock=clock)
        rows.append(compare(case.name, times, baseline, library, case.target))
    return rows


def columns(baseline: str, library: str, digits: int = 3) -> list[dict[str, Any]]:
    """The columns of a table of `Row.data()` rows."""
    return [
        {"key": "name", "title": "case"},
        {"key": "baseline_ms", "title": f"{baseline} ms", "format": "{:.1f}"},
        {"key": "library_ms", "title": f"{library} ms", "format": "{:.1f}"},
        {"key": "ratio", "title": "ratio", "format": "{:." + str(digits) + "f}x"},
        {"key": "target", "title": "target", "format": "<= {:.2f}x", "none": "info"},
        {"key": "result", "title": "result", "none": ""},
    ]


# ---------------------------------------------------------------------------
# Options, header, results
# ---------------------------------------------------------------------------


def parser(description: str, profile: str = "") -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has; given
    `profile` (what it profiles), also `--profile` and `--top`."""
    parsed = argparse.ArgumentParser(description=description)
    if profile:
        parsed.add_argument(
            "--profile", action="store_true", help=f"instead of timing, {profile}"
        )
        parsed.add_argument(
            "--top", type=int, default=25, help="entries listed by --profile"
        )
    parsed.add_argument("--quick", action="store_true", help="fewer repeats")
    parsed.add_argument("--repeats", type=int, help="repeats per side")
    parsed.add_argument(
        "--check", action="store_true", help="exit 1 if a ratio misses its target"
    )
    parsed.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall-clock time (default) or the process's CPU time over all "
        "threads, which ignores waiting for a core",
    )
    parsed.add_argument("--note", default="", help="a sentence stored with the results")
    parsed.add_argument(
        "--no-save",
        action="store_true",
        help=f"do not write the results into {RESULTS.relative_to(ROOT)}/",
    )
    return parsed


def settings(
    args: argparse.Namespace, full: int, quick: int = 5
) -> tuple[int, Callable[[], float]]:
    """The repeats per side (`--repeats`, else `quick` with `--quick`, else
    `full`) and the clock (`--clock`)."""
    return args.repeats or (quick if args.quick else full), CLOCKS[args.clock]


def quiet() -> None:
    """Silence the logs Keras and TensorFlow write on every `.h5` save and
    load and on each retrace; the noise is alike on both sides and hides the
    table."""
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 0


def versions(*modules: str) -> dict[str, str]:
    """Keras's, the library's and each named module's version (imports them)."""
    import importlib

    found = {}
    for name in ("keras", "serializable", *modules):
        module = importlib.import_module(name)
        found[name] = str(getattr(module, "__version__", "?"))
    return found


def _commit() -> str | None:
    """The checkout's commit, marked when what was measured has local changes:
    the library's source, this harness or the running script."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    script = Path(sys.argv[0]).resolve()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "src", str(HERE / "_harness.py"),
                    str(script))  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if dirty else "")


# Read when the script starts, so that a commit made while it runs is not
# credited with what it measured.
COMMIT = _commit()


def header(
    args: argparse.Namespace,
    repeats: int,
    found: Mapping[str, str],
    backend: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """How, where and when a table was measured."""
    given = list(sys.argv[1:])
    if "--note" in given:  # the note is stored on its own
        del given[given.index("--note") : given.index("--note") + 2]
    script = f"benchmarks/{Path(sys.argv[0]).name}"
    command = " ".join(["python", script, *map(shlex.quote, given)])
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "commit": COMMIT,
        "python": platform.python_version(),
        "versions": dict(found),
        "backend": backend,
        "cpus": cpus(),
        "statistic": STATISTIC,
        "repeats": repeats,
        "clock": args.clock,
        **extra,
        "note": args.note,
    }


def report(
    name: str,
    args: argparse.Namespace,
    head: dict[str, Any],
    cols: list[dict[str, Any]],
    rows: Sequence[Row | dict[str, Any]],
    *,
    passed: bool | None = None,
    footnotes: Sequence[str] = (),
) -> int:
    """Print the table, save it as `results/<name>.json`; the exit status.

    `passed` defaults to every `Row` meeting its target; with `--check` a
    miss exits 1.
    """
    data = {
        "header": head,
        "columns": cols,
        "rows": [r.data() if isinstance(r, Row) else r for r in rows],
    }
    if footnotes:
        data["footnotes"] = list(footnotes)
    print(bench_report.render(name, data), flush=True)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        _log(f"wrote {path.relative_to(ROOT)}; render it: {bench_report.FIX}")
    if passed is None:
        passed = all(r.passed for r in rows if isinstance(r, Row))
    if args.check and not passed:
        _log("missed a target")
        return 1
    return 0


# ---------------------------------------------------------------------------
# Child processes (one per backend)
# ---------------------------------------------------------------------------


def child_result(result: Any) -> None:
    """In a child process: hand `result` (JSON) to the parent."""
    print(CHILD_MARK + json.dumps(result), flush=True)


def run_child(argv: Sequence[str], backend: str, **env: str) -> Any:
    """Run this script again as `argv` under `backend`; its `child_result`.

    stdout lines that are not the result, and stderr, are passed through.
    """
    environment = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **env,
    }
    done = subprocess.run(
        [sys.executable, sys.argv[0], *argv],
        capture_output=True,
        text=True,
        env=environment,
    )
    sys.stderr.write(done.stderr)
    lines = done.stdout.splitlines()
    for line in lines:
        if not line.startswith(CHILD_MARK):
            print(line)
    found = [line for line in lines if line.startswith(CHILD_MARK)]
    if done.returncode or not found:
        raise SystemExit(f"{backend}: the measuring process failed ({done.returncode})")
    return json.loads(found[-1][len(CHILD_MARK) :])


# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------


def phases(
    stats: Any, table: Iterable[tuple[str, str, str]]
) -> Iterable[tuple[str, int, float]]:
    """(label, calls, cumulative seconds) of each (label, file suffix,
    function name) of `table` that ran under the profiler `stats`."""
    for label, suffix, name in table:
        calls, seconds = cumulative(stats, suffix, name)
        if calls:
            yield label, calls, seconds


def print_top(stats: Any, top: int, what: str = "") -> None:
    """The `top` functions of `stats` by cumulative time."""
    print(f"\ntop {top}{what} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


def cumulative(stats: Any, suffix: str, name: str) -> tuple[int, float]:
    """Calls and cumulative seconds of the functions `name` in files `suffix`
    in a `pstats.Stats`; a name starting "<method " matches by prefix."""
    calls, seconds = 0, 0.0
    for (filename, _, funcname), (_, ncalls, _, cumtime, _) in stats.stats.items():
        prefix = name.startswith("<method ") and funcname.startswith(name)
        if (funcname == name or prefix) and filename.endswith(suffix):
            calls += ncalls
            seconds += cumtime
    return calls, seconds
