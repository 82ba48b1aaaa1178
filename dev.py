#!/usr/bin/env python3
"""Set up a local virtual environment and run the demo or the test suite.

Needs only python3 (3.10+). Usage:

    python3 dev.py demo    # create .venv, install, run examples/quickstart.py
    python3 dev.py test    # create .venv, install, run the whole suite on the
                           # tensorflow, jax and torch backends in turn
    python3 dev.py compat --write   # rewrite the README's compatibility table
                                    # from the last full `test` run
    python3 dev.py bench-report --write  # render benchmarks/results/*.json into
                                         # benchmarks/README.md (--check: compare)
    python3 dev.py keras2-corpus    # rewrite tests/data/keras2/ with Keras 2
                                    # (its own venv: tensorflow-cpu + tf-keras;
                                    # KERAS_SERIALIZABLE_KERAS2_VENV to reuse one)

`test` first runs the static checks once (`ruff check`, `ruff format --check`,
`mypy` on src/, and `mkdocs build --strict` of the documentation site), then
pytest once per Keras backend, each in its own process, and exits non-zero if
any of them fails. Set KERAS_BACKEND to run one backend only. Extra
arguments after `test` go to every pytest run. After a full run (all three
backends, no extra arguments) it checks that the README's compatibility table
says what the suite just showed. Without extra arguments it also runs, on
TensorFlow, a fast subset of the suite at the oldest supported Keras
(`KERAS_FLOOR`, installed into build/keras-floor) and the packaging tests
against the built wheel installed into a fresh environment (build/wheel-venv).

Set KERAS_SERIALIZABLE_VENV to use another environment directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("KERAS_SERIALIZABLE_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".keras-serializable-installed"
BACKENDS = ("tensorflow", "jax", "torch")
COMPAT_DIR = ROOT / "build" / "compat"
# The CPU build of PyTorch: a bare `torch` requirement would pull the newest
# build with several GB of CUDA packages.
TORCH = "torch==2.13.0"
# The oldest Keras the library supports: pyproject.toml says `keras>=KERAS_FLOOR`
# (tests/test_package.py checks they agree). Why it is not lower: README.md.
KERAS_FLOOR = "3.11.3"
FLOOR_DIR = ROOT / "build" / "keras-floor"
# Run at the floor: the files and formats code, the registry, generated
# configs, and every Keras internal the library uses (about 1 CPU-minute).
FLOOR_TESTS = (
    "tests/test_keras_compat.py",
    "tests/test_files.py",
    "tests/test_register.py",
    "tests/test_config.py",
)
DIST = ROOT / "build" / "dist"
WHEEL_VENV = ROOT / "build" / "wheel-venv"
# Run against the installed wheel: the public surface, packaging, a smoke test.
WHEEL_TESTS = ("tests/test_package.py",)


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def setup() -> None:
    """Create the venv and install the project with every backend, once."""
    if sys.version_info < (3, 10):  # noqa: UP036 (dev.py runs on any python3)
        sys.exit(f"keras-serializable needs Python >= 3.10, found {sys.version}")
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(
        PYTHON, "-m", "pip", "install", "--quiet",
        "-e", ".[tensorflow,jax,torch,test,lint,docs]", TORCH,
    )  # fmt: skip
    STAMP.touch()


def _backends() -> tuple[str, ...]:
    chosen = os.environ.get("KERAS_BACKEND")
    if not chosen:
        return BACKENDS
    if chosen not in BACKENDS:
        sys.exit(f"KERAS_BACKEND must be one of {BACKENDS}; received {chosen!r}")
    return (chosen,)


# --- static checks (issue 15): lint, format, types, the documentation site ---
CHECKS = (
    ("ruff check", ["-m", "ruff", "check", "."]),
    ("ruff format", ["-m", "ruff", "format", "--check", "."]),
    ("mypy", ["-m", "mypy"]),  # files = src/ (pyproject.toml [tool.mypy])
    ("mkdocs build", ["-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
                      str(ROOT / "build" / "site")]),
)  # fmt: skip


def checks() -> dict[str, tuple[int, float]]:
    """Run each static check once (they do not depend on the backend)."""
    results: dict[str, tuple[int, float]] = {}
    for name, cmd in CHECKS:
        print(f"\n=== {name}: {' '.join(cmd)}", flush=True)
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("NO_MKDOCS_2_WARNING", "1")  # mkdocs-material's banner
        start = time.monotonic()
        code = subprocess.run([str(PYTHON), *cmd], cwd=ROOT, env=env).returncode
        results[name] = (code, time.monotonic() - start)
    return results


def _pytest(
    python: Path, tests: tuple[str, ...], env: dict[str, str], cwd: Path = ROOT
) -> tuple[int, float]:
    env = {**env, "KERAS_BACKEND": "tensorflow"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    cmd += [str(ROOT / t) for t in tests]
    print("+", " ".join(cmd), flush=True)
    start = time.monotonic()
    code = subprocess.run(cmd, cwd=cwd, env=env).returncode
    return code, time.monotonic() - start


def floor_tests() -> tuple[int, float]:
    """FLOOR_TESTS on TensorFlow with Keras KERAS_FLOOR in front of the venv's."""
    print(f"\n=== Keras {KERAS_FLOOR} (the supported floor)", flush=True)
    installed = FLOOR_DIR / f".keras-{KERAS_FLOOR}"
    if not installed.exists():
        _run(
            PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
            "--target", FLOOR_DIR, f"keras=={KERAS_FLOOR}",
        )  # fmt: skip
        installed.touch()
    path = [str(FLOOR_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env["SERIALIZABLE_EXPECT_KERAS"] = KERAS_FLOOR
    return _pytest(PYTHON, FLOOR_TESTS, env)


def _purelib(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return out.stdout.strip()


def package_tests() -> tuple[int, float]:
    """Build the sdist and wheel, install the wheel into a fresh environment
    that borrows the dev venv's other packages, and run WHEEL_TESTS there, from
    outside the source tree so nothing imports src/."""
    print("\n=== the built wheel, installed", flush=True)
    shutil.rmtree(DIST, ignore_errors=True)
    _run(PYTHON, "-m", "hatchling", "build", "-d", DIST)
    wheel = next(DIST.glob("*.whl"))
    shutil.rmtree(WHEEL_VENV, ignore_errors=True)
    venv.EnvBuilder(with_pip=False).create(WHEEL_VENV)
    wheel_python = WHEEL_VENV / PYTHON.relative_to(VENV)
    # The dev venv's packages (keras, a backend, pytest) after the wheel's:
    # a plain path entry, so the editable install of this project in the dev
    # venv (a .pth file there) stays inactive.
    Path(_purelib(wheel_python), "_dev_venv.pth").write_text(_purelib(PYTHON) + "\n")
    _run(
        PYTHON, "-m", "pip", "--python", wheel_python, "install", "--quiet",
        "--no-deps", wheel,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SERIALIZABLE_EXPECT_PREFIX"] = str(WHEEL_VENV)
    with tempfile.TemporaryDirectory() as outside:
        return _pytest(wheel_python, WHEEL_TESTS, env, cwd=Path(outside))


def test(args: list[str]) -> int:
    backends = _backends()
    full = backends == BACKENDS and not args
    results: dict[str, tuple[int, float]] = checks() if not args else {}
    for backend in backends:
        env = {**os.environ, "KERAS_BACKEND": backend}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["SERIALIZABLE_COMPAT_DIR"] = str(COMPAT_DIR)
        cmd = [str(PYTHON), "-m", "pytest", "--durations=15", *args]
        print(f"\n=== KERAS_BACKEND={backend}: {' '.join(cmd)}", flush=True)
        start = time.monotonic()
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        results[backend] = (code, time.monotonic() - start)
    if not args:
        results["keras-floor"] = floor_tests()
        results["wheel"] = package_tests()
    print("\n=== summary")
    for backend, (code, seconds) in results.items():
        verdict = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"  {backend:<12} {verdict} in {seconds:.0f} s")
    failed = any(code for code, _ in results.values())
    if full and not failed:
        return compat(["--check"])
    return 1 if failed else 0


def compat(args: list[str]) -> int:
    cmd = [sys.executable, str(ROOT / "tools" / "compat_table.py"), *args]
    cmd += ["--results", str(COMPAT_DIR), "--readme", str(ROOT / "README.md")]
    return subprocess.run(cmd, cwd=ROOT).returncode


def bench_report(args: list[str]) -> int:
    """Render the benchmark results files into benchmarks/README.md (stdlib only;
    the test suite runs `--check`)."""
    cmd = [sys.executable, str(ROOT / "tools" / "bench_report.py"), *args]
    return subprocess.run(cmd, cwd=ROOT).returncode


KERAS2_VENV = Path(
    os.environ.get("KERAS_SERIALIZABLE_KERAS2_VENV", ROOT / ".venv-keras2")
)
KERAS2_REQUIREMENTS = ("tensorflow-cpu==2.21.0", "tf-keras==2.21.0")


def keras2_corpus(args: list[str]) -> int:
    """Write the Keras 2 corpus with tf-keras, in an environment of its own
    (Keras 2 and Keras 3 cannot share one). Not needed to run the tests."""
    python = KERAS2_VENV / ("Scripts" if os.name == "nt" else "bin") / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(KERAS2_VENV)
        _run(python, "-m", "pip", "install", "--quiet", *KERAS2_REQUIREMENTS)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}
    target = args[0] if args else str(ROOT / "tests" / "data" / "keras2")
    cmd = [str(python), str(ROOT / "tools" / "keras2_corpus.py"), target]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    commands = {"demo", "test", "setup", "compat", "bench-report", "keras2-corpus"}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    if argv[0] == "compat":
        return compat(argv[1:])
    if argv[0] == "bench-report":
        return bench_report(argv[1:])
    if argv[0] == "keras2-corpus":
        return keras2_corpus(argv[1:])
    setup()
    if argv[0] == "test":
        return test(argv[1:])
    if argv[0] == "demo":
        env = {**os.environ}
        env.setdefault("KERAS_BACKEND", "tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        cmd = [str(PYTHON), "examples/quickstart.py", *argv[1:]]
        print("+", " ".join(cmd), flush=True)
        return subprocess.run(cmd, cwd=ROOT, env=env).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
