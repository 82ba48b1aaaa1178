"""Custom models trained under `tf.distribute.MirroredStrategy` save and reload.

Run in a fresh interpreter (tests/test_distribution.py does): the two logical
CPU devices must be configured before TensorFlow initialises its runtime.

    KERAS_BACKEND=tensorflow python tests/distributed/mirrored.py OUTDIR

Prints one `PASS ...` line per check that passed and `DONE` at the end; any
failure is an exception (non-zero exit status).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if os.environ.get("KERAS_BACKEND") != "tensorflow":
    sys.exit("mirrored.py needs KERAS_BACKEND=tensorflow")

import numpy as np
import tensorflow as tf

# Two logical CPU devices, before anything initialises the runtime.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import dist_blocks  # noqa: E402  (after the devices exist)


def main(directory: Path) -> None:
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices

    strategy = tf.distribute.MirroredStrategy(devices)
    assert strategy.num_replicas_in_sync == 2

    def fresh() -> tf.distribute.Strategy:
        # One strategy per process, a fresh scope of it each time: a second
        # MirroredStrategy in the same process reuses the first one's
        # collective keys and its all-reduce fails with "Shape mismatch in the
        # collective instance" (tensorflow/tensorflow#62790), whatever is saved.
        return strategy

    def per_device(variable: object) -> list[np.ndarray]:
        value = getattr(variable, "value", variable)
        if not isinstance(value, tf.distribute.DistributedValues):
            return [value.numpy()]
        return [component.numpy() for component in value.values]

    for name in ("tagger", "ctc"):
        for line in dist_blocks.run(name, directory, fresh, per_device):
            print("PASS", line, flush=True)
        for line in dist_blocks.roundtrip(name, directory, fresh):
            print("PASS", line, flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {Path(__file__).name} OUTDIR  (where the files go)")
    main(Path(sys.argv[1]))
