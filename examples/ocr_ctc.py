"""OCR with CTC: train a small CRNN, decode, save, and reload in a fresh process.

Everything is generated here: text-line images are drawn from a tiny bitmap
font defined below, so the example needs no downloads and no font files. It
trains on two CPU cores in a minute or two:

    KERAS_BACKEND=tensorflow python examples/ocr_ctc.py            # full run
    KERAS_BACKEND=tensorflow python examples/ocr_ctc.py --quick    # smoke test

What it shows:

* a CRNN (convolutions -> a sequence along the image width -> bidirectional
  GRU -> per-frame logits) trained end to end with `CTCLayer`, which adds the
  CTC loss, so `compile` needs no loss;
* an inference model that shares the trained layers and ends in `CTCDecoder`,
  scored with the `CharacterErrorRate` metric;
* both models saved with `serializable.save_model` as `.keras` and `.h5`, then
  reloaded with `serializable.load_model` in a *fresh* Python process (this
  script's `--decode` mode), which must decode exactly what this process did.

The class convention, used by the loss *and* by every decoder: the blank is
class 0 and the characters of `ALPHABET` are classes 1..N. Labels are padded
with -1, and decoders pad their output with -1 too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import serializable

# Importing serializable.ctc also registers CTCLayer and CTCDecoder. The fresh
# process needs that import too: `serializable.load_model` refuses a file whose
# classes are not registered rather than guess where they live.
from serializable.ctc import (
    CharacterErrorRate,
    CTCDecoder,
    CTCLayer,
    ctc_decode,
    edit_distance,
)

# ---------------------------------------------------------------------------
# A built-in 5x7 bitmap font. Each block lists its characters, then seven rows
# of the glyphs side by side ("#" is ink). Letters that look like digits at
# this size (O, I, S, B, Z, G) are left out so the task stays well posed.
# ---------------------------------------------------------------------------

_FONT_BLOCKS = """
  0     1     2     3     4     5     6     7     8     9
.###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###.
#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...#
#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...#
#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .####
##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....#
#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#.
.###. .###. ##### .###. ...#. .###. .###. .#... .###. .##..

  A     C     E     H     K     L     M     P     R     X
.###. .###. ##### #...# #...# #.... #...# ####. ####. #...#
#...# #...# #.... #...# #..#. #.... ##.## #...# #...# #...#
#...# #.... #.... #...# #.#.. #.... #.#.# #...# #...# .#.#.
##### #.... ####. ##### ##... #.... #.#.# ####. ####. ..#..
#...# #.... #.... #...# #.#.. #.... #...# #.... #.#.. .#.#.
#...# #...# #.... #...# #..#. #.... #...# #.... #..#. #...#
#...# .###. ##### #...# #...# ##### #...# #.... #...# #...#
"""


def _parse_font(blocks: str) -> dict[str, np.ndarray]:
    font = {}
    for block in blocks.strip().split("\n\n"):
        header, *rows = block.splitlines()
        columns = [row.split() for row in rows]
        for i, char in enumerate(header.split()):
            font[char] = np.array([[c == "#" for c in row[i]] for row in columns])
    return font


FONT = _parse_font(_FONT_BLOCKS)
ALPHABET = "".join(FONT)  # class k (1..N) is ALPHABET[k - 1]
BLANK = 0  # the CTC blank class, for the loss and for the decoder
NUM_CLASSES = len(ALPHABET) + 1  # characters + blank

HEIGHT, WIDTH = 24, 128  # image size; the width becomes the time axis
MIN_LEN, MAX_LEN = 3, 8  # characters per line
PAD = -1  # label padding (CTCLayer's label_pad_value, the decoder's padding)
BATCH_SIZE = 64


# ---------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------


def render_line(text: str, rng: np.random.Generator) -> np.ndarray:
    """Draw `text` as a noisy grey-scale (HEIGHT, WIDTH) image in [0, 1].

    Per line: glyph size, ink/background levels, stroke weight and noise vary;
    per character: the gap before it and a +-1 pixel vertical wobble. This is
    enough variety that the model must read shapes, not memorise positions.
    """
    glyph_h = int(rng.integers(12, 19))
    glyph_w = int(round(glyph_h * rng.uniform(0.5, 0.75)))
    gaps = rng.integers(1, 5, size=len(text))
    # Shrink the glyphs when a long line would not fit the canvas.
    room = WIDTH - 4 - int(gaps[1:].sum())
    glyph_w = max(4, min(glyph_w, room // len(text)))
    bold = rng.random() < 0.4

    rows = np.arange(glyph_h) * 7 // glyph_h  # nearest-neighbour scaling
    cols = np.arange(glyph_w) * 5 // glyph_w
    ink = np.zeros((HEIGHT, WIDTH), dtype=bool)
    line_width = len(text) * glyph_w + int(gaps[1:].sum())
    x = int(rng.integers(0, WIDTH - line_width + 1))
    top = int(rng.integers(1, HEIGHT - glyph_h))
    for i, char in enumerate(text):
        if i:
            x += int(gaps[i])
        glyph = FONT[char][np.ix_(rows, cols)]
        if bold:  # a one-pixel-wider stroke
            glyph = glyph | np.pad(glyph, ((0, 0), (1, 0)))[:, :-1]
        y = int(np.clip(top + rng.integers(-1, 2), 0, HEIGHT - glyph_h))
        ink[y : y + glyph_h, x : x + glyph_w] |= glyph
        x += glyph_w

    background = rng.uniform(0.0, 0.3)
    foreground = rng.uniform(0.65, 1.0)
    image = np.where(ink, foreground, background)
    image += rng.normal(0.0, rng.uniform(0.02, 0.12), size=image.shape)
    return np.clip(image, 0.0, 1.0).astype("float32")


def encode(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text]  # 0 is the blank


def decode_text(classes: np.ndarray) -> str:
    return "".join(ALPHABET[c - 1] for c in classes if c != PAD)


def make_dataset(
    count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return images (count, H, W, 1), labels (count, MAX_LEN) padded, texts."""
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=count)
    texts = ["".join(rng.choice(list(ALPHABET), size=n)) for n in lengths]
    images = np.stack([render_line(text, rng) for text in texts])[..., None]
    labels = np.full((count, MAX_LEN), PAD, dtype="int32")
    for i, text in enumerate(texts):
        labels[i, : len(text)] = encode(text)
    return images, labels, texts


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def build_models() -> tuple[keras.Model, keras.Model]:
    """Return (training model, inference model); they share every layer."""
    image = keras.Input((HEIGHT, WIDTH, 1), name="image")
    x = image
    for filters in (32, 64):
        # Batch normalization shortens the plateau CTC training starts on
        # (while the model emits only blanks): about 2 epochs here, not 5.
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)  # ends at (H/4, W/4, 64)
    # Make the width the time axis: each of the W/4 = 32 frames is a column
    # strip of the feature map, flattened. 32 frames leave room for CTC's
    # blanks between repeated characters (8 characters need at most 15).
    x = keras.layers.Permute((2, 1, 3))(x)
    x = keras.layers.Reshape((WIDTH // 4, (HEIGHT // 4) * 64))(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(64, return_sequences=True))(x)
    # Raw logits: CTCLayer and CTCDecoder both default to from_logits=True.
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(x)

    # Training: the labels are a second input. CTCLayer adds the loss and
    # passes the logits through; label lengths come from the -1 padding and
    # every image uses all 32 frames, so no length inputs are needed.
    labels = keras.Input((MAX_LEN,), dtype="int32", name="labels")
    ctc = CTCLayer(blank_index=BLANK, label_pad_value=PAD, name="ctc")(logits, labels)
    training_model = keras.Model([image, labels], ctc, name="crnn_training")

    # Inference: the same layers, no labels, greedy decoding inside the graph,
    # so the saved model maps an image straight to class ids padded with -1.
    # The blank must be the one the loss was trained with.
    decoded = CTCDecoder(strategy="greedy", blank_index=BLANK, name="decoder")(logits)
    inference_model = keras.Model(image, decoded, name="crnn_inference")
    return training_model, inference_model


def logits_model(model: keras.Model) -> keras.Model:
    """Cut either model at its logits: image in, (batch, frames, classes) out."""
    return keras.Model(
        model.get_layer("image").output, model.get_layer("logits").output
    )


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


# ---------------------------------------------------------------------------
# Reloading in a fresh process
# ---------------------------------------------------------------------------


def decode_saved_model(model_path: Path, images_path: Path, output: Path) -> None:
    """The `--decode` mode: load a saved model and decode images with it.

    Runs in a new interpreter that has built nothing, so every layer (the CTC
    layer and the decoder included) and every weight comes from the file.
    Writes the decoded class ids to `output` and the logits next to it.
    """
    start = time.perf_counter()
    model = serializable.load_model(model_path)
    images = np.load(images_path)
    logits = logits_model(model).predict(images, verbose=0)
    if len(model.inputs) == 1:  # the inference model decodes by itself
        decoded = model.predict(images, verbose=0)
    else:
        # The training model also wants labels; decode its logits directly,
        # the way the inference model's CTCDecoder does.
        paths, _ = ctc_decode(logits, strategy="greedy", blank_index=BLANK)
        decoded = keras.ops.convert_to_numpy(paths)[0]
    np.save(output, np.asarray(decoded))
    np.save(output.with_suffix(".logits.npy"), logits)
    # A training model comes back compiled, optimizer state included, so
    # `model.fit` could resume where it stopped.
    optimizer = getattr(model, "optimizer", None)  # unset on the inference one
    resume = ""
    if optimizer is not None:
        resume = f"; optimizer at step {int(optimizer.iterations.numpy())}"
    print(
        f"  fresh process: loaded {model_path.name} and decoded {len(images)} "
        f"images in {time.perf_counter() - start:.1f} s{resume}",
        flush=True,
    )


def decode_in_fresh_process(
    model_path: Path, images_path: Path
) -> tuple[np.ndarray, np.ndarray] | None:
    """Run this script's `--decode` mode; return its (decoded, logits).

    Returns None if the fresh process failed (its traceback is on stderr).
    """
    output = model_path.with_name(model_path.name + ".decoded.npy")
    command = [sys.executable, __file__, "--decode", str(model_path)]
    command += ["--images", str(images_path), "--output", str(output)]
    if subprocess.run(command).returncode != 0:
        return None
    return np.load(output), np.load(output.with_suffix(".logits.npy"))


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------


def run(args: argparse.Namespace, out_dir: Path) -> int:
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_count, test_count = (256, 64) if args.quick else (args.train, 1000)

    start = time.perf_counter()
    train_images, train_labels, _ = make_dataset(train_count, rng)
    test_images, test_labels, test_texts = make_dataset(test_count, rng)
    data_seconds = time.perf_counter() - start
    print(f"alphabet {ALPHABET!r}: classes 1..{len(ALPHABET)}, blank {BLANK}")
    print(
        f"generated {train_count} training and {test_count} held-out "
        f"{HEIGHT}x{WIDTH} images in {data_seconds:.1f} s",
        flush=True,
    )

    training_model, inference_model = build_models()
    # Decaying the learning rate to zero settles the weights (and the batch
    # norm statistics) at the end; at a constant rate the last epoch's
    # noise costs a few points of CER.
    steps = args.epochs * -(-train_count // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    training_model.compile(optimizer=keras.optimizers.Adam(schedule))
    timer = EpochTimer()
    # No targets and no loss argument: the loss comes from CTCLayer.
    training_model.fit(
        [train_images, train_labels],
        epochs=args.epochs,
        batch_size=BATCH_SIZE,
        verbose=2,
        callbacks=[timer],
    )

    start = time.perf_counter()
    decoded = inference_model.predict(test_images, verbose=0)
    decode_seconds = time.perf_counter() - start
    logits = logits_model(inference_model).predict(test_images, verbose=0)
    cer_metric = CharacterErrorRate(pad_value=PAD)
    cer_metric.update_state(test_labels, decoded)
    cer = float(cer_metric.result())
    edits = keras.ops.convert_to_numpy(edit_distance(test_labels, decoded))
    print(f"\n{'truth':<10} {'decoded':<10} edits")
    for i in range(8):
        print(f"{test_texts[i]:<10} {decode_text(decoded[i]):<10} {edits[i]:.0f}")

    # Save both models in both formats, then reload each one in a new Python
    # process and check that it decodes the held-out images exactly as here.
    images_path = out_dir / "held_out_images.npy"
    np.save(images_path, test_images)
    print(f"\nsaving to {out_dir}", flush=True)
    reloads = []
    for name, model in (("inference", inference_model), ("training", training_model)):
        for suffix in ("keras", "h5"):
            path = serializable.save_model(model, out_dir / f"ocr_{name}.{suffix}")
            fresh = decode_in_fresh_process(path, images_path)
            if fresh is None:
                verdict, same = "FAILED TO LOAD OR DECODE", False
            else:
                # The decoded ids must match exactly. The logits are compared
                # too, since an untrained model (--quick) decodes only blanks
                # whatever its weights; 1e-5 leaves room for float rounding.
                diff = float(np.max(np.abs(fresh[1] - logits)))
                if not np.array_equal(fresh[0], decoded):
                    verdict = "DECODED DIFFERENTLY"
                elif diff > 1e-5:
                    verdict = "decoded the same, but its LOGITS DIFFER"
                else:
                    verdict = "decoded identically"
                same = verdict == "decoded identically"
                verdict += f" (logits max |diff| {diff:.1e})"
            reloads.append(same)
            size = path.stat().st_size / 1024
            print(f"  {name} model .{suffix:<5} ({size:.0f} KiB): {verdict}")

    per_epoch = ", ".join(f"{s:.1f}" for s in timer.seconds)
    print(
        f"\ntimings: data {data_seconds:.1f} s; training {sum(timer.seconds):.1f} s "
        f"({args.epochs} epochs: {per_epoch} s); greedy decoding of "
        f"{test_count} images {decode_seconds:.2f} s (first call, tracing included)"
    )
    exact = np.mean(edits == 0)
    print(f"held-out CER {cer:.4f} ({exact:.1%} of lines exactly right)")

    status = 0
    if all(reloads):
        print("OK: both models reloaded from .keras and .h5 decoded identically")
    else:
        print("FAIL: a model reloaded in a fresh process did not match this one")
        status = 1
    if args.quick:
        print("(--quick: too little training for the CER to mean anything)")
    elif cer < args.max_cer:
        print(f"OK: CER {cer:.4f} < {args.max_cer}")
    else:
        print(f"FAIL: CER {cer:.4f} is not below {args.max_cer}")
        status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny data, 1 epoch, no CER check"
    )
    parser.add_argument("--epochs", type=int, help="default: 8, or 1 with --quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=8000, help="training images")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--max-cer", type=float, default=0.05, help="fail at or above this CER"
    )
    parser.add_argument("--out", type=Path, help="save the models here (default: temp)")
    # The fresh-process mode (see decode_saved_model).
    parser.add_argument(
        "--decode", type=Path, metavar="MODEL_PATH", help="only decode, with this"
    )
    parser.add_argument("--images", type=Path, metavar="NPY_PATH", help="to decode")
    parser.add_argument(
        "--output", type=Path, metavar="NPY_PATH", help="where --decode writes"
    )
    args = parser.parse_args(argv)

    if args.decode:
        if not (args.images and args.output):
            parser.error("--decode needs --images and --output")
        decode_saved_model(args.decode, args.images, args.output)
        return 0
    if args.epochs is None:
        args.epochs = 1 if args.quick else 8
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        return run(args, args.out)
    with tempfile.TemporaryDirectory(prefix="ocr_ctc-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
