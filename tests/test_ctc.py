"""CTC loss and the CTCLayer endpoint: correct against TensorFlow, trainable, reloadable."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import serializable
from serializable.ctc import CTCLayer, CTCLoss, ctc_loss

tf = pytest.importorskip("tensorflow")

B, T, C, L = 8, 40, 7, 10


def ragged_batch(rng, batch=B, steps=T, classes=C, max_label=L, blank=0, pad=-1):
    """Random logits, labels avoiding the blank, ragged lengths that always fit."""
    logits = rng.normal(size=(batch, steps, classes)).astype("float32")
    lengths = rng.integers(1, max_label + 1, size=batch)
    choices = [c for c in range(classes) if c != blank % classes]
    labels = np.full((batch, max_label), pad, dtype="int32")
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.choice(choices, size=n)
    input_length = rng.integers(2 * max_label + 1, steps + 1, size=batch)
    return logits, labels, lengths, input_length


def loss_and_gradient(fn, x):
    """fn(x) (per-sample losses) and the gradient of their sum w.r.t. x, as NumPy.

    Each backend's own autodiff: tf.GradientTape, jax.vjp, torch autograd.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            loss = fn(variable)
            total = tf.reduce_sum(loss)
        return loss.numpy(), tape.gradient(total, variable).numpy()
    if backend == "jax":
        import jax

        loss, pullback = jax.vjp(fn, jax.numpy.asarray(x))
        (grad,) = pullback(jax.numpy.ones_like(loss))
        return np.asarray(loss), np.asarray(grad)
    if backend == "torch":
        import torch

        variable = torch.tensor(x, requires_grad=True)
        loss = fn(variable)
        loss.sum().backward()
        return loss.detach().numpy(), variable.grad.numpy()
    pytest.skip(f"no autodiff helper for the {backend!r} backend in this test")


def tf_reference(logits, labels, lengths, input_length, blank):
    dense = np.where(labels < 0, 0, labels)
    return tf.nn.ctc_loss(
        labels=dense,
        logits=logits,
        label_length=lengths,
        logit_length=input_length,
        logits_time_major=False,
        blank_index=blank,
    ).numpy()


class TestLossValues:
    @pytest.mark.parametrize("blank_index", [0, 3, -1, -2])
    def test_matches_tf_nn_ctc_loss(self, rng, blank_index):
        """Per-sample loss equals tf.nn.ctc_loss to 1e-4 relative, for any blank index."""
        blank = blank_index % C
        logits, labels, lengths, input_length = ragged_batch(rng, blank=blank)
        ours = np.asarray(
            ctc_loss(labels, logits, input_length, blank_index=blank_index)
        )
        expected = tf_reference(logits, labels, lengths, input_length, blank)
        np.testing.assert_allclose(ours, expected, rtol=1e-4)

    def test_matches_keras2_ctc_batch_cost(self, rng):
        """from_logits=False, blank_index=-1 reproduces Keras 2's ctc_batch_cost."""
        from keras.src.legacy.backend import ctc_batch_cost

        logits, labels, lengths, input_length = ragged_batch(rng, blank=C - 1)
        probs = tf.nn.softmax(logits).numpy()
        legacy = ctc_batch_cost(
            np.where(labels < 0, 0, labels),
            probs,
            input_length[:, None],
            lengths[:, None],
        ).numpy()[:, 0]
        ours = ctc_loss(
            labels,
            probs,
            input_length[:, None],
            lengths[:, None],
            blank_index=-1,
            from_logits=False,
        )
        np.testing.assert_allclose(np.asarray(ours), legacy, rtol=1e-4)

    def test_lengths_from_padding_and_any_pad_value(self, rng):
        """Label lengths come from the pad value; a real class 0 is never padding."""
        logits, labels, lengths, input_length = ragged_batch(rng, blank=C - 1)
        labels[:, 0] = 0  # class 0 is a real label when the blank is last
        explicit = ctc_loss(labels, logits, input_length, lengths, blank_index=-1)
        padded = np.where(np.arange(L)[None] < lengths[:, None], labels, 99)
        implicit = ctc_loss(
            padded, logits, input_length, blank_index=-1, label_pad_value=99
        )
        np.testing.assert_allclose(
            np.asarray(implicit), np.asarray(explicit), rtol=1e-6
        )

    def test_input_length_from_mask(self, rng):
        """A Keras mask gives the input lengths when none are passed."""
        logits, labels, _, input_length = ragged_batch(rng)
        mask = np.arange(T)[None, :] < input_length[:, None]
        np.testing.assert_allclose(
            np.asarray(ctc_loss(labels, logits, mask=mask)),
            np.asarray(ctc_loss(labels, logits, input_length)),
            rtol=1e-6,
        )

    def test_empty_label_is_all_blank(self, rng):
        """An empty label costs -sum log p(blank) over the valid frames."""
        logits, labels, _, input_length = ragged_batch(rng)
        labels[0, :] = -1
        loss = np.asarray(ctc_loss(labels, logits, input_length))
        log_blank = tf.nn.log_softmax(logits[0])[: input_length[0], 0].numpy()
        np.testing.assert_allclose(loss[0], -log_blank.sum(), rtol=1e-5)

    def test_float16_inputs_computed_in_float32(self, rng):
        """float16 predictions give the float32 loss (to float16 input precision)."""
        logits, labels, _, input_length = ragged_batch(rng)
        half = ctc_loss(labels, logits.astype("float16"), input_length)
        full = ctc_loss(
            labels, logits.astype("float16").astype("float32"), input_length
        )
        assert keras.backend.standardize_dtype(half.dtype) == "float32"
        np.testing.assert_allclose(np.asarray(half), np.asarray(full), rtol=1e-6)


class TestImpossibleAlignments:
    def impossible(self, rng):
        logits, labels, lengths, input_length = ragged_batch(rng)
        labels[0, :] = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4]
        input_length[0] = 6  # 10 labels cannot fit in 6 frames
        return logits, labels, input_length

    def test_zero_infinity_gives_zero_loss_and_gradient(self, rng):
        """Impossible rows get loss 0 and gradient 0; the others are untouched."""
        logits, labels, input_length = self.impossible(rng)
        loss, grad = loss_and_gradient(
            lambda x: ctc_loss(labels, x, input_length, zero_infinity=True), logits
        )
        assert loss[0] == 0.0
        assert np.all(grad[0] == 0.0)
        assert np.all(np.isfinite(grad))
        assert np.any(grad[1:] != 0.0)
        np.testing.assert_allclose(
            loss[1:],
            tf_reference(
                logits[1:], labels[1:], (labels[1:] >= 0).sum(1), input_length[1:], 0
            ),
            rtol=1e-4,
        )

    def test_refused_without_zero_infinity(self, rng):
        """Eagerly, an impossible label is an error that names the sample and the fix."""
        logits, labels, input_length = self.impossible(rng)
        with pytest.raises(ValueError) as info:
            ctc_loss(labels, logits, input_length)
        message = str(info.value)
        assert "sample 0 cannot be aligned" in message
        assert "Received: input_length=6, but 10 frames are needed" in message
        assert "zero_infinity=True" in message

    def test_repeats_need_a_blank_between(self, rng):
        """'aa' needs 3 frames: 2 frames are impossible, 3 are fine."""
        logits = rng.normal(size=(2, 3, 4)).astype("float32")
        labels = np.array([[1, 1], [1, 1]])
        loss = np.asarray(ctc_loss(labels, logits, [2, 3], zero_infinity=True))
        assert loss[0] == 0.0 and loss[1] > 0.0

    def test_loss_never_negative(self, rng):
        """Near-certain predictions give a loss of 0, not a tiny negative number."""
        logits = np.full((1, 3, 3), -50.0, dtype="float32")
        logits[0, :, 0] = 50.0
        logits[0, 1, 0], logits[0, 1, 1] = -50.0, 50.0
        loss = np.asarray(ctc_loss(np.array([[1]]), logits))
        assert loss[0] >= 0.0


class TestValidation:
    @pytest.mark.parametrize(
        ("labels", "kwargs", "message"),
        [
            ([[1, 9]], {}, "labels' must hold class indices in [0, 5)"),
            ([[1, 0]], {}, "must not contain the blank class"),
            ([[1, 4]], {"blank_index": -1}, "must not contain the blank class"),
            ([[1, 2]], {"blank_index": 5}, "Received: blank_index=5"),
        ],
    )
    def test_bad_labels(self, labels, kwargs, message):
        """Labels out of range or equal to the blank are named with the fix."""
        logits = np.zeros((1, 6, 5), "float32")
        with pytest.raises(ValueError, match=re_escape(message)):
            ctc_loss(np.array(labels), logits, **kwargs)

    def test_bad_ranks(self):
        """Wrong ranks say which argument and the expected shape."""
        with pytest.raises(
            ValueError, match=r"'y_pred' must be \(batch, time, classes\)"
        ):
            ctc_loss(np.zeros((1, 2)), np.zeros((6, 5), "float32"))
        with pytest.raises(
            ValueError, match=r"'labels' must be \(batch, max_label_length\)"
        ):
            ctc_loss(np.zeros((2,)), np.zeros((2, 6, 5), "float32"))
        with pytest.raises(
            ValueError, match=r"'input_length' must have shape \(batch,\)"
        ):
            ctc_loss(np.ones((2, 1)), np.zeros((2, 6, 5), "float32"), np.ones((2, 3)))

    @pytest.mark.parametrize(
        ("input_length", "label_length", "message"),
        [
            ([6, 7], None, "'input_length' must be within [0, 6]"),
            ([6, -1], None, "Received: input_length value -1"),
            (None, [2, 3], "'label_length' must be within [0, 2]"),
        ],
    )
    def test_lengths_outside_the_arrays(self, input_length, label_length, message):
        """Lengths past the padded arrays are refused eagerly, naming the bound."""
        logits = np.zeros((2, 6, 5), "float32")
        labels = np.array([[1, 2], [3, -1]])
        with pytest.raises(ValueError, match=re_escape(message)):
            ctc_loss(labels, logits, input_length, label_length)


def re_escape(text):
    import re

    return re.escape(text)


def endpoint_model(blank_index=0, from_logits=True, zero_infinity=False):
    frames = keras.Input((T, 6), name="frames")
    labels = keras.Input((L,), dtype="int32", name="labels")
    input_length = keras.Input((1,), dtype="int32", name="input_length")
    hidden = keras.layers.Dense(16, activation="relu")(frames)
    y_pred = keras.layers.Dense(C, activation=None if from_logits else "softmax")(
        hidden
    )
    outputs = CTCLayer(
        blank_index=blank_index,
        from_logits=from_logits,
        label_pad_value=-1,
        zero_infinity=zero_infinity,
        name="ctc",
    )(y_pred, labels, input_length)
    model = keras.Model([frames, labels, input_length], outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def endpoint_data(rng, blank):
    _, labels, _, input_length = ragged_batch(rng, batch=16, blank=blank)
    frames = rng.normal(size=(16, T, 6)).astype("float32")
    return [frames, labels, input_length[:, None]]


class TestCTCLayer:
    def test_trains(self, rng):
        """compile(optimizer=...) + fit lowers the CTC loss; no loss argument needed."""
        model = endpoint_model()
        data = endpoint_data(rng, 0)
        history = model.fit(data, epochs=15, batch_size=8, verbose=0)
        losses = history.history["loss"]
        assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]

    def test_layer_loss_equals_ctc_loss(self, rng):
        """The added loss is the batch mean of ctc_loss with the same settings."""
        model = endpoint_model(blank_index=-1, from_logits=False)
        data = endpoint_data(rng, C - 1)
        y_pred = model(data)  # the layer returns y_pred unchanged
        expected = np.mean(
            keras.ops.convert_to_numpy(
                ctc_loss(data[1], y_pred, data[2], blank_index=-1, from_logits=False)
            )
        )
        added = keras.ops.convert_to_numpy(model.losses[0])
        np.testing.assert_allclose(added, expected, rtol=1e-5)

    @pytest.mark.parametrize("blank_index", [0, -1])
    def test_round_trips_with_its_settings(self, rng, fmt, reload, blank_index):
        """All settings reload in both formats; outputs and training continue identically."""
        model = endpoint_model(
            blank_index=blank_index, from_logits=False, zero_infinity=True
        )
        data = endpoint_data(rng, blank_index % C)
        model.fit(data, epochs=1, batch_size=8, verbose=0)
        restored = reload(model)
        layer = restored.get_layer("ctc")
        assert type(layer) is CTCLayer
        assert (
            layer.blank_index,
            layer.from_logits,
            layer.label_pad_value,
            layer.zero_infinity,
        ) == (
            blank_index,
            False,
            -1,
            True,
        )
        np.testing.assert_allclose(
            restored.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-6
        )
        np.testing.assert_allclose(
            restored.evaluate(data, verbose=0),
            model.evaluate(data, verbose=0),
            rtol=1e-5,
        )

    def test_assert_roundtrip_passes(self, rng, tmp_path):
        """The project's own round-trip check passes on a trained CTC model, both formats."""
        model = endpoint_model()
        data = endpoint_data(rng, 0)
        model.fit(data, epochs=1, batch_size=8, verbose=0)
        serializable.assert_roundtrip(
            model, data, tmp_path=tmp_path, using="serializable"
        )

    def test_mask_gives_input_lengths(self, rng):
        """A mask on y_pred (from Masking) sets the input lengths."""
        frames = keras.Input((T, 6))
        labels = keras.Input((L,), dtype="int32")
        masked = keras.layers.Masking(0.0)(frames)
        y_pred = keras.layers.Dense(C)(masked)
        out = CTCLayer(name="ctc")(y_pred, labels)
        model = keras.Model([frames, labels], out)
        x, lab, input_length = endpoint_data(rng, 0)
        x[np.arange(T)[None, :] >= input_length] = 0.0
        model([x, lab])
        dense = model.layers[2]
        expected = keras.ops.convert_to_numpy(
            ctc_loss(lab, dense(x), input_length[:, 0])
        )
        added = keras.ops.convert_to_numpy(model.losses[0])
        np.testing.assert_allclose(added, np.mean(expected), rtol=1e-5)

    def test_mixed_float16(self, rng):
        """Under mixed_float16 the loss is computed in float32 and training works."""
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            model = endpoint_model()
            history = model.fit(
                endpoint_data(rng, 0), epochs=2, batch_size=8, verbose=0
            )
        finally:
            keras.mixed_precision.set_global_policy("float32")
        assert np.isfinite(history.history["loss"]).all()


class TestCTCLoss:
    def test_compile_with_ctc_loss(self, rng, tmp_path):
        """CTCLoss works in compile(loss=...) and keeps its settings through .keras and .h5."""
        model = keras.Sequential([keras.Input((T, 6)), keras.layers.Dense(C)])
        model.compile(
            optimizer="adam", loss=CTCLoss(blank_index=-1, zero_infinity=True)
        )
        _, labels, _, _ = ragged_batch(rng, batch=16, blank=C - 1)
        x = rng.normal(size=(16, T, 6)).astype("float32")
        model.fit(x, labels, epochs=1, verbose=0)
        for suffix in ("keras", "h5"):
            path = tmp_path / f"m.{suffix}"
            serializable.save_model(model, path)
            restored = serializable.load_model(path)
            assert isinstance(restored.loss, CTCLoss)
            assert (restored.loss.blank_index, restored.loss.zero_infinity) == (
                -1,
                True,
            )
            np.testing.assert_allclose(
                restored.evaluate(x, labels, verbose=0),
                model.evaluate(x, labels, verbose=0),
                rtol=1e-5,
            )


@pytest.mark.slow
def test_import_serializable_is_enough_to_load_ctc_models(tmp_path):
    """A fresh process that only imports serializable loads CTCLayer/CTCDecoder files."""
    import subprocess
    import sys

    from serializable.ctc import CTCDecoder

    frames = keras.Input((T, 6))
    labels = keras.Input((L,), dtype="int32")
    logits = keras.layers.Dense(C)(frames)
    train = keras.Model([frames, labels], CTCLayer()(logits, labels))
    reader = keras.Model(frames, CTCDecoder(blank_index=-1)(logits))
    paths = []
    for name, model in (("train", train), ("reader", reader)):
        for suffix in ("keras", "h5"):
            path = tmp_path / f"{name}.{suffix}"
            serializable.save_model(model, path)
            paths.append(str(path))
    code = (
        "import sys, serializable\n"
        "for p in sys.argv[1:]:\n"
        "    print(type(serializable.load_model(p).layers[-1]).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *paths],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["CTCLayer"] * 2 + ["CTCDecoder"] * 2
