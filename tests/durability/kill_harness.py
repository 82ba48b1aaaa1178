"""Kill -9 harness: saves killed at random moments never lose the model.

Run as `python kill_harness.py DIRECTORY FORMAT KILLS SEED`. The process
imports Keras once (the numpy backend: no threads, so `fork` is safe), then
for each round forks a child that saves model A or B over the same target in
a loop and kills it with SIGKILL after a random delay. After every kill the
target must load and hold exactly A's or B's weights (it exists from a first
save). At the end one more save must leave no temporary file of the target
behind. Prints one JSON line: {"kills": n, "temporaries_seen": n,
"problems": [...]}.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

os.environ["KERAS_BACKEND"] = "numpy"

import keras
import numpy as np

import serializable


def model(value: float) -> keras.Model:
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, name="d")])
    for v in m.weights:
        v.assign(np.full(v.shape, value, dtype="float32"))
    return m


def weights_of(path: Path) -> set[float]:
    loaded = serializable.load_model(path, compile=False)
    return {float(np.asarray(v).reshape(-1)[0]) for v in loaded.weights}


def main() -> None:
    directory, fmt, kills, seed = (
        Path(sys.argv[1]),
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    rng = random.Random(seed)
    target = directory / f"model.{fmt}"
    models = {1.0: model(1.0), 2.0: model(2.0)}
    serializable.save_model(models[1.0], target)
    # How long one save takes, so kills land anywhere inside one.
    start = time.perf_counter()
    serializable.save_model(models[2.0], target)
    one_save = time.perf_counter() - start
    problems: list[str] = []
    temporaries_seen = 0
    for round_ in range(kills):
        pid = os.fork()
        if pid == 0:  # the child saves A and B in turn until it is killed
            try:
                while True:
                    for value in (1.0, 2.0):
                        serializable.save_model(models[value], target)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 2.5 * one_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        temporaries_seen += len([p for p in directory.iterdir() if ".tmp." in p.name])
        try:
            found = weights_of(target)
        except Exception as err:
            problems.append(f"round {round_}: {type(err).__name__}: {err}")
            continue
        if found not in ({1.0}, {2.0}):
            problems.append(f"round {round_}: weights {sorted(found)}")
    serializable.save_model(models[1.0], target)
    left = sorted(p.name for p in directory.iterdir() if p.name != target.name)
    if left:
        problems.append(f"left after the next save: {left}")
    print(
        json.dumps(
            {"kills": kills, "temporaries_seen": temporaries_seen, "problems": problems}
        )
    )


if __name__ == "__main__":
    main()
