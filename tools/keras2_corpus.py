"""Write the Keras 2 corpus of tests/data/keras2/: files saved by `tf-keras`.

Run it with Keras 2 (`tf-keras`), not with this project's Keras 3:

    python3 dev.py keras2-corpus     # makes .venv-keras2 with tensorflow-cpu + tf-keras

or, in an environment that has `tf-keras`:

    TF_USE_LEGACY_KERAS=1 python tools/keras2_corpus.py tests/data/keras2

For each model it writes the model file(s) (`NAME.h5`, `NAME.keras`) and
`NAME.npz`, which holds, as plain arrays (no pickle):

* `x_0`, `x_1`, ...: the inputs, `p_0`, `p_1`, ...: Keras 2's predictions;
* for compiled models, `tx_*`/`ty_*`: one training batch, and `np_*`: the
  predictions after one `train_on_batch` on it, continuing from the saved
  state (optimizer slots and iteration count included), `nw_*`: the
  weights after that step (in `model.weights` order) and `loss`: the loss
  Keras 2 reported for that step.

`corpus.json` lists every file with what it exercises and what loading it
should do ("load", or the refusal expected). The files are deliberately tiny.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tf_keras as keras

L = keras.layers
RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype("float32")


def ints(high: int, *shape: int) -> np.ndarray:
    return RNG.integers(0, high, shape).astype("int32")


# ---------------------------------------------------------------------------
# Custom objects, as a Keras 2 user registered them
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="my_layers")
class Gate(L.Layer):
    """x * sigmoid(w): one weight vector."""

    def __init__(self, units: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(self.units,), initializer="ones")

    def call(self, x):
        return x * tf.sigmoid(self.w)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="my_layers")
def huberish(y_true, y_pred):
    error = y_true - y_pred
    return tf.reduce_mean(tf.sqrt(1.0 + tf.square(error)) - 1.0, axis=-1)


class CTCLayer(L.Layer):
    """The Keras 2 OCR example's layer: adds the CTC loss, returns predictions.
    Not registered: saved under its bare name."""

    def call(self, y_true, y_pred):
        batch = tf.cast(tf.shape(y_true)[0], "int64")
        input_length = tf.cast(tf.shape(y_pred)[1], "int64") * tf.ones(
            (batch, 1), dtype="int64"
        )
        label_length = tf.cast(tf.shape(y_true)[1], "int64") * tf.ones(
            (batch, 1), dtype="int64"
        )
        loss = keras.backend.ctc_batch_cost(y_true, y_pred, input_length, label_length)
        self.add_loss(tf.reduce_mean(loss))
        return y_pred


class BareGate(Gate):
    """Saved unregistered, so its file names it `BareGate` only."""


# ---------------------------------------------------------------------------
# Models: each returns (model, inputs, train_x, train_y or None)
# ---------------------------------------------------------------------------


def seq_dense():
    model = keras.Sequential(
        [L.Dense(8, activation="relu", input_shape=(5,)), L.Dense(3)]
    )
    model.compile(keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model, [rand(4, 5)], [rand(8, 5)], [rand(8, 3)]


def seq_conv2d_bn():
    model = keras.Sequential(
        [
            L.Conv2D(4, 3, padding="same", input_shape=(8, 8, 2)),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(3),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    y = np.eye(3, dtype="float32")[ints(3, 8)]
    return model, [rand(4, 8, 8, 2)], [rand(8, 8, 8, 2)], [y]


def func_conv1d():
    x = keras.Input((12, 3))
    h = L.Conv1D(4, 3, activation="relu")(x)
    h = L.AveragePooling1D()(h)
    h = L.GlobalMaxPooling1D()(h)
    y = L.Dense(2)(h)
    model = keras.Model(x, y)
    model.compile(keras.optimizers.RMSprop(0.01), loss="mae", metrics=["mse"])
    return model, [rand(4, 12, 3)], [rand(8, 12, 3)], [rand(8, 2)]


def func_sepconv():
    x = keras.Input((8, 8, 3))
    h = L.SeparableConv2D(4, 3, padding="same")(x)
    h = L.DepthwiseConv2D(3, depth_multiplier=2)(h)
    h = L.Conv2DTranspose(3, 2, strides=2)(h)
    h = L.SeparableConv1D(2, 2)(L.Reshape((12 * 12, 3))(h))
    y = L.Dense(2)(L.GlobalAveragePooling1D()(h))
    model = keras.Model(x, y)
    model.compile(keras.optimizers.Nadam(0.01), loss="mse")
    return model, [rand(4, 8, 8, 3)], [rand(8, 8, 8, 3)], [rand(8, 2)]


def func_conv_transpose():
    x = keras.Input((6, 6, 2))
    h = L.Conv2DTranspose(3, 3, padding="same", activation="tanh")(x)
    h = L.Conv1DTranspose(2, 3)(L.Reshape((36, 3))(h))
    h = L.Conv2D(2, 2, dilation_rate=2)(L.Reshape((19, 4, 1))(L.Cropping1D((0, 0))(h)))
    y = L.Flatten()(h)
    model = keras.Model(x, y)
    model.compile(keras.optimizers.Adamax(0.02), loss="mse")
    return model, [rand(4, 6, 6, 2)], [rand(8, 6, 6, 2)], [rand(8, 68)]


def text_lstm():
    model = keras.Sequential(
        [
            L.Embedding(20, 6, mask_zero=True, input_length=7),
            L.LayerNormalization(),
            L.Dropout(0.3),
            L.LSTM(5),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adagrad(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    x = ints(20, 4, 7)
    x[:, -2:] = 0  # padding, masked
    tx = ints(20, 8, 7)
    tx[:, -3:] = 0
    return model, [x], None, None  # Dropout: a training step is random


def text_gru_stack():
    x = keras.Input((7,), dtype="int32")
    h = L.Embedding(20, 6, mask_zero=True)(x)
    h = L.Bidirectional(L.GRU(4, return_sequences=True))(h)
    h = L.TimeDistributed(L.Dense(3, activation="relu"))(h)
    h = L.SimpleRNN(4, return_sequences=True)(h)
    y = L.GRU(3, reset_after=False)(h)
    model = keras.Model(x, y)
    model.compile(keras.optimizers.Adamax(0.01), loss="mse")
    xs = ints(20, 4, 7)
    xs[:, -2:] = 0
    tx = ints(20, 8, 7)
    return model, [xs], [tx], [rand(8, 3)]


def bidirectional_lstm():
    model = keras.Sequential(
        [
            L.Bidirectional(
                L.LSTM(3, return_sequences=True),
                merge_mode="sum",
                input_shape=(6, 4),
            ),
            L.TimeDistributed(L.Dense(2)),
            L.Bidirectional(L.SimpleRNN(2)),
        ]
    )
    model.compile(keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True), "mse")
    return model, [rand(4, 6, 4)], [rand(8, 6, 4)], [rand(8, 4)]


def attention():
    x = keras.Input((5, 8))
    a = L.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    h = L.LayerNormalization()(L.Add()([x, a]))
    b = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, output_shape=4)(
        h, h, h
    )
    y = L.Dense(2)(L.GlobalAveragePooling1D()(b))
    model = keras.Model(x, y)
    model.compile(keras.optimizers.AdamW(0.01, weight_decay=0.05), loss="mse")
    return model, [rand(4, 5, 8)], [rand(8, 5, 8)], [rand(8, 2)]


def nested_shared():
    encoder = keras.Sequential(
        [L.Dense(6, activation="relu", input_shape=(4,)), L.Dense(3)], name="encoder"
    )
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    shared = L.Dense(4, activation="tanh", name="shared")
    ea = encoder(shared(a))
    eb = encoder(shared(b))
    y = L.Dense(1, name="score")(L.Concatenate()([ea, eb, L.Subtract()([ea, eb])]))
    model = keras.Model([a, b], y)
    model.compile(keras.optimizers.Adam(0.01, amsgrad=True), loss="mse")
    return model, [rand(4, 4), rand(4, 4)], [rand(8, 4), rand(8, 4)], [rand(8, 1)]


def nested_functional():
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, L.Dense(4, activation="relu")(inner_in), name="inner")
    x = keras.Input((6,))
    h1 = inner(x)
    h2 = inner(L.Dense(6)(x))
    y = L.Dense(2)(L.Average()([h1, h2]))
    model = keras.Model(x, y)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True), "mse")
    return model, [rand(4, 6)], [rand(8, 6)], [rand(8, 2)]


def multi_io():
    a = keras.Input((5,), name="num")
    b = keras.Input((3,), name="cat")
    h = L.Concatenate()([L.Dense(4, activation="relu")(a), b])
    out1 = L.Dense(1, name="reg")(h)
    out2 = L.Dense(3, activation="softmax", name="cls")(h)
    model = keras.Model([a, b], [out1, out2])
    model.compile(
        keras.optimizers.Adam(0.005),
        loss={
            "reg": keras.losses.MeanSquaredError(),
            "cls": "categorical_crossentropy",
        },
        loss_weights={"reg": 1.0, "cls": 0.5},
        metrics={"reg": [keras.metrics.MeanAbsoluteError()], "cls": ["accuracy"]},
    )
    y2 = np.eye(3, dtype="float32")[ints(3, 8)]
    return (
        model,
        [rand(4, 5), rand(4, 3)],
        [rand(8, 5), rand(8, 3)],
        [rand(8, 1), y2],
    )


def reshape_merge():
    a = keras.Input((4, 4, 2))
    b = keras.Input((8,))
    h = L.ZeroPadding2D(1)(a)
    h = L.Cropping2D(1)(h)
    h = L.UpSampling2D(2)(h)
    h = L.MaxPooling2D(2)(h)
    h = L.Permute((2, 1, 3))(h)
    h = L.Reshape((16, 2))(h)
    h = L.UpSampling1D(2)(L.ZeroPadding1D(1)(h))
    h = L.Flatten()(L.MaxPooling1D(4)(h))
    rb = L.RepeatVector(2)(b)
    m = L.Multiply()([L.Flatten()(rb), L.Dense(16)(h)])
    d = L.Dot(axes=1)([L.Dense(4)(m), L.Dense(4)(b)])
    mx = L.Maximum()([L.Dense(3)(m), L.Dense(3)(b)])
    mn = L.Minimum()([L.Dense(3)(m), mx])
    y = L.Concatenate()([d, mx, mn, L.Activation("sigmoid")(L.Dense(2)(b))])
    model = keras.Model([a, b], y)
    return model, [rand(4, 4, 4, 2), rand(4, 8)], None, None


def pooling3d():
    x = keras.Input((4, 4, 4, 1))
    h = L.Conv3D(2, 2, activation="relu")(x)
    h = L.AveragePooling3D(1)(L.MaxPooling3D(1)(h))
    h = L.GlobalAveragePooling3D()(h)
    y = L.Dense(2)(L.LeakyReLU(0.2)(h))
    model = keras.Model(x, y)
    model.compile("adam", loss="mse")
    return model, [rand(4, 4, 4, 4, 1)], [rand(8, 4, 4, 4, 1)], [rand(8, 2)]


def normalization():
    norm = L.Normalization()
    norm.adapt(rand(32, 4) * 3 + 1)
    model = keras.Sequential([keras.Input((4,)), norm, L.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), loss="mse")
    return model, [rand(4, 4)], [rand(8, 4)], [rand(8, 2)]


def batchnorm_functional():
    x = keras.Input((6, 6, 3))
    h = L.BatchNormalization(axis=-1, momentum=0.9)(x)
    h = L.Conv2D(2, 1, use_bias=False)(h)
    h = L.BatchNormalization(axis=1, center=False)(h)
    h = L.GroupNormalization(2)(h) if hasattr(L, "GroupNormalization") else h
    y = L.Dense(1)(L.GlobalAveragePooling2D()(h))
    model = keras.Model(x, y)
    model.compile(keras.optimizers.Adam(0.01), loss="mse")
    return model, [rand(4, 6, 6, 3)], [rand(8, 6, 6, 3)], [rand(8, 1)]


def lr_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 10, 0.5)
    model = keras.Sequential(
        [L.Dense(4, activation="elu", input_shape=(3,)), L.Dense(1)]
    )
    model.compile(
        keras.optimizers.SGD(schedule, momentum=0.5),
        loss=keras.losses.Huber(delta=0.5),
        metrics=[keras.metrics.RootMeanSquaredError()],
    )
    return model, [rand(4, 3)], [rand(8, 3)], [rand(8, 1)]


def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x = keras.Input((6,))
        h = L.Dense(8, activation="relu")(x)
        h = L.Dense(4)(h)
        y = L.Activation("linear", dtype="float32")(h)
        model = keras.Model(x, y)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.Adam(0.01), loss="mse")
    return model, [rand(4, 6)], [rand(8, 6)], [rand(8, 4)]


def custom_registered():
    model = keras.Sequential([L.Dense(4, input_shape=(3,)), Gate(4), L.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01), loss=huberish)
    return model, [rand(4, 3)], [rand(8, 3)], [rand(8, 2)]


def custom_bare():
    x = keras.Input((3,))
    y = L.Dense(2)(BareGate(3)(x))
    model = keras.Model(x, y)
    return model, [rand(4, 3)], None, None


def custom_ctc():
    image = keras.Input((8, 4), name="image")
    labels = keras.Input((3,), name="label")
    h = L.Dense(5, activation="softmax")(L.Dense(6, activation="relu")(image))
    out = CTCLayer(name="ctc_loss")(labels, h)
    model = keras.Model([image, labels], out)
    model.compile(keras.optimizers.Adam(0.01))
    lab = (ints(3, 4, 3) + 1).astype("float32")
    return model, [rand(4, 8, 4), lab], None, None


def tfop():
    x = keras.Input((6,))
    h = L.Dense(6)(x)
    h = tf.nn.relu(h) + 1.0
    h = tf.reduce_mean(tf.reshape(h, (-1, 3, 2)), axis=-1)
    h = h[:, 1:]
    y = L.Dense(2)(tf.concat([h, tf.math.square(h)], axis=-1))
    model = keras.Model(x, y)
    return model, [rand(4, 6)], None, None


def lambda_layer():
    model = keras.Sequential(
        [L.Dense(3, input_shape=(4,)), L.Lambda(lambda t: t * 2.0 + 1.0), L.Dense(2)]
    )
    return model, [rand(4, 4)], None, None


def dense_trained_with(make_optimizer):
    """A small MLP compiled with `make_optimizer()`: one kernel/bias pair per
    layer, so both 2-D and 1-D variables get the optimizer's slots."""

    def build():
        model = keras.Sequential(
            [L.Dense(6, activation="tanh", input_shape=(4,)), L.Dense(2)]
        )
        model.compile(make_optimizer(), loss="mse")
        return model, [rand(3, 4)], [rand(8, 4)], [rand(8, 2)]

    return build


# name -> (builder, formats, expectation, notes)
CASES = {
    "seq_dense_adam": (
        seq_dense,
        ("h5", "keras"),
        "load",
        "Sequential, Adam, 'mse'/'mae'",
    ),
    "seq_conv2d_bn_sgd": (
        seq_conv2d_bn,
        ("h5", "keras"),
        "load",
        "Conv2D, BatchNorm, SGD momentum, CategoricalCrossentropy object",
    ),
    "func_conv1d_rmsprop": (
        func_conv1d,
        ("h5", "keras"),
        "load",
        "Conv1D, pooling, RMSprop",
    ),
    "func_sepconv_nadam": (
        func_sepconv,
        ("h5", "keras"),
        "load",
        "SeparableConv1D/2D, DepthwiseConv2D, Conv2DTranspose, Nadam",
    ),
    "func_conv_transpose_adamax": (
        func_conv_transpose,
        ("h5", "keras"),
        "load",
        "Conv1DTranspose/2DTranspose, dilation, Adamax",
    ),
    "text_lstm_adagrad": (
        text_lstm,
        ("h5", "keras"),
        "load",
        "Embedding mask_zero, LayerNorm, Dropout, LSTM, Adagrad",
    ),
    "text_gru_stack": (
        text_gru_stack,
        ("h5", "keras"),
        "load",
        "Bidirectional GRU, TimeDistributed, SimpleRNN, GRU reset_after=False",
    ),
    "bidirectional_lstm": (
        bidirectional_lstm,
        ("h5", "keras"),
        "load",
        "Bidirectional LSTM/SimpleRNN, RMSprop centered momentum",
    ),
    "attention_adamw": (
        attention,
        ("h5", "keras"),
        "load",
        "MultiHeadAttention, AdamW",
    ),
    "nested_shared": (
        nested_shared,
        ("h5", "keras"),
        "load",
        "nested Sequential called twice, shared layer, two inputs, Adam amsgrad",
    ),
    "nested_functional": (
        nested_functional,
        ("h5", "keras"),
        "load",
        "nested Functional called twice, SGD nesterov",
    ),
    "multi_io": (
        multi_io,
        ("h5", "keras"),
        "load",
        "two inputs, two outputs, dict losses/metrics/loss_weights",
    ),
    "reshape_merge": (
        reshape_merge,
        ("h5", "keras"),
        "load",
        "reshaping and merging layers, uncompiled",
    ),
    "pooling3d": (
        pooling3d,
        ("h5", "keras"),
        "load",
        "Conv3D, 3D pooling, 'adam' string",
    ),
    "normalization": (normalization, ("h5", "keras"), "load", "adapted Normalization"),
    "batchnorm_axes": (
        batchnorm_functional,
        ("h5", "keras"),
        "load",
        "BatchNormalization axis -1 and 1, GroupNormalization",
    ),
    "lr_schedule": (
        lr_schedule,
        ("h5", "keras"),
        "load",
        "ExponentialDecay schedule, Huber object, RootMeanSquaredError",
    ),
    "mixed_precision": (
        mixed_precision,
        ("h5", "keras"),
        "load",
        "mixed_float16, LossScaleOptimizer",
    ),
    "custom_registered": (
        custom_registered,
        ("h5", "keras"),
        "custom",
        "registered Gate layer and huberish loss",
    ),
    "custom_bare": (
        custom_bare,
        ("h5", "keras"),
        "custom",
        "unregistered layer saved by bare name",
    ),
    "custom_ctc": (
        custom_ctc,
        ("h5", "keras"),
        "custom",
        "unregistered CTCLayer (the OCR example)",
    ),
    "tfop": (
        tfop,
        ("h5", "keras"),
        "tfop",
        "raw tf.* calls: TFOpLambda, SlicingOpLambda",
    ),
    "lambda": (lambda_layer, ("h5", "keras"), "lambda", "Lambda layer (bytecode)"),
    # Optimizers whose slots Keras 2 lays out differently from the ones above.
    "optimizer_adadelta": (
        dense_trained_with(lambda: keras.optimizers.Adadelta(1.0, rho=0.9)),
        ("h5", "keras"),
        "load",
        "Adadelta: two slots per variable",
    ),
    "optimizer_ftrl": (
        dense_trained_with(
            lambda: keras.optimizers.Ftrl(
                0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.01
            )
        ),
        ("h5", "keras"),
        "load",
        "Ftrl with L1/L2: accumulator and linear slots",
    ),
    "optimizer_lion": (
        dense_trained_with(lambda: keras.optimizers.Lion(0.01)),
        ("h5", "keras"),
        "load",
        "Lion: one momentum slot",
    ),
    "optimizer_adafactor": (
        dense_trained_with(lambda: keras.optimizers.Adafactor(0.05)),
        ("h5", "keras"),
        "load",
        "Adafactor: factored r/c slots for kernels, none for biases",
    ),
}


def train_steps(model, tx, ty, steps=3):
    for _ in range(steps):
        model.train_on_batch(tx, ty)


def main(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    listing: dict[str, dict] = {}
    for name, (builder, formats, expect, notes) in CASES.items():
        keras.utils.set_random_seed(1)
        model, xs, tx, ty = builder()
        data: dict[str, np.ndarray] = {}
        if model.optimizer is not None and tx is not None:
            # A few steps first, so the optimizer has slots and iterations.
            train_steps(model, _one(tx), _one(ty))
        for i, x in enumerate(xs):
            data[f"x_{i}"] = x
        preds = model.predict(_one(xs), verbose=0)
        for i, p in enumerate(_list(preds)):
            data[f"p_{i}"] = np.asarray(p, dtype="float32")
        for fmt in formats:
            target = out / f"{name}.{fmt}"
            model.save(target, save_format="h5" if fmt == "h5" else "keras")
            listing[target.name] = {
                "data": f"{name}.npz",
                "expect": expect,
                "notes": notes,
                "mixed_precision": name == "mixed_precision",
                "step": tx is not None and model.optimizer is not None,
                "optimizer": type(model.optimizer).__name__
                if model.optimizer
                else None,
            }
        if tx is not None and model.optimizer is not None:
            # Another batch: the rows reversed, float inputs perturbed.
            step_x = [
                t[::-1] + 0.5 * rand(*t.shape) if t.dtype.kind == "f" else t[::-1]
                for t in tx
            ]
            step_y = [t[::-1].copy() for t in ty]
            for i, t in enumerate(step_x):
                data[f"tx_{i}"] = t
            for i, t in enumerate(step_y):
                data[f"ty_{i}"] = t
            loss = model.train_on_batch(_one(step_x), _one(step_y))
            data["loss"] = np.asarray(_list(loss)[0], dtype="float64")
            after = model.predict(_one(xs), verbose=0)
            for i, p in enumerate(_list(after)):
                data[f"np_{i}"] = np.asarray(p, dtype="float32")
            for i, w in enumerate(model.weights):
                data[f"nw_{i}"] = np.asarray(w.numpy())
        np.savez(out / f"{name}.npz", **data)
        keras.backend.clear_session()
    # A SavedModel directory and two weights-only files: refused with a message.
    keras.utils.set_random_seed(1)
    model, xs, _, _ = seq_dense()
    model.save(out / "savedmodel_dir", save_format="tf")
    listing["savedmodel_dir"] = {
        "expect": "savedmodel",
        "notes": "TensorFlow SavedModel directory",
    }
    x = keras.Input((3,))
    small = keras.Model(x, L.Dense(2)(x))
    small.save(out / "tfsm_small", save_format="tf")
    listing["tfsm_small"] = {
        "expect": "savedmodel",
        "notes": "TensorFlow SavedModel directory",
    }
    model.save_weights(out / "weights_only.h5")
    listing["weights_only.h5"] = {"expect": "weights", "notes": "save_weights to .h5"}
    small.save_weights(out / "weights_only_v3.weights.h5")
    listing["weights_only_v3.weights.h5"] = {
        "expect": "weights",
        "notes": "save_weights to .weights.h5",
    }
    for directory in ("savedmodel_dir", "tfsm_small"):
        # Keep the directories tiny: the variables are what TFSMLayer needs;
        # fingerprint/keras_metadata are not.
        for extra in ("fingerprint.pb", "assets"):
            path = out / directory / extra
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    (out / "corpus.json").write_text(
        json.dumps(
            {
                "written_by": (
                    f"tf-keras {keras.__version__}, tensorflow {tf.__version__}"
                ),
                "files": listing,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(listing)} corpus entries, {total / 1024:.0f} KiB, to {out}")


def _one(values):
    return values[0] if len(values) == 1 else values


def _list(values):
    return list(values) if isinstance(values, (list, tuple)) else [values]


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/keras2"))
