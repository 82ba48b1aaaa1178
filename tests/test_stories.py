"""The user stories from the articles the project grew from, in both formats."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from serializable import (
    SerializableConstraint,
    SerializableInitializer,
    SerializableLayer,
    SerializableLearningRateSchedule,
    SerializableLoss,
    SerializableMetric,
    SerializableModel,
    SerializableRegularizer,
    add_state_weight,
)


class LossEndpoint(SerializableLayer, package="stories"):
    """The articles' CTC-style endpoint: a hyperparameter, add_loss, returns y_pred."""

    def __init__(self, blank_index=-1, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.blank_index = blank_index
        self.weight = weight

    def call(self, y_pred, y_true):
        self.add_loss(self.weight * keras.ops.mean(keras.ops.square(y_pred - y_true)))
        return y_pred


class WeightsInInit(SerializableLayer, package="stories"):
    """Creates its weights in __init__ from a known input size (no build)."""

    def __init__(self, input_dim, units, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(
            shape=(input_dim, units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(units,), initializer="zeros", name="bias")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) + self.bias


class Vocabulary(SerializableLayer, package="stories"):
    """Small non-weight state (a vocabulary) kept as a constructor argument."""

    def __init__(self, tokens, **kwargs):
        super().__init__(**kwargs)
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def encode(self, words):
        return [self.index.get(word, -1) for word in words]

    def call(self, x):
        return x * float(len(self.tokens))


class Lookup(SerializableLayer, package="stories"):
    """Large numeric state (a lookup table) kept as a non-trainable weight."""

    def __init__(self, rows=500, dim=4, seed=0, **kwargs):
        super().__init__(**kwargs)
        table = np.random.default_rng(seed).normal(size=(rows, dim)).astype("float32")
        self.table = add_state_weight(self, "table", table)

    def call(self, ids):
        return keras.ops.take(self.table, ids, axis=0)


class Residual(SerializableLayer, package="stories"):
    def __init__(self, units, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units, activation=activation)

    def call(self, x):
        return x + self.dense(x)


class Classifier(SerializableModel, package="stories"):
    """A subclassed model with nested custom layers."""

    def __init__(self, width=8, depth=2, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.stem = keras.layers.Dense(width)
        self.blocks = [Residual(width, name=f"residual_{i}") for i in range(depth)]
        self.head = keras.layers.Dense(classes)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class TestEndpointLayer:
    def test_hyperparameter_survives_without_get_config(self, fmt, reload, rng):
        """The endpoint layer's blank_index reloads, and the reloaded model still trains."""
        y_pred_in = keras.Input((5,), name="features")
        y_true_in = keras.Input((5,), name="targets")
        outputs = LossEndpoint(blank_index=29, weight=0.5, name="endpoint")(
            keras.layers.Dense(5)(y_pred_in), y_true_in
        )
        model = keras.Model([y_pred_in, y_true_in], outputs)
        model.compile(optimizer="adam")
        data = [rng.normal(size=(16, 5)), rng.normal(size=(16, 5))]
        model.fit(data, epochs=1, verbose=0)

        restored = reload(model)

        layer = restored.get_layer("endpoint")
        assert (layer.blank_index, layer.weight) == (29, 0.5)
        np.testing.assert_allclose(
            restored.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-6
        )
        restored.compile(optimizer="adam")
        history = restored.fit(data, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])


class TestWeightsInInit:
    def test_weights_created_in_init_round_trip(
        self, fmt, reload, rng, assert_same_weights
    ):
        """Weights made in __init__ (no build) reload with their values."""
        model = keras.Sequential([keras.Input((3,)), WeightsInInit(3, 2, name="w")])
        model.layers[0].kernel.assign(rng.normal(size=(3, 2)))
        restored = reload(model)
        assert_same_weights(model, restored)


class TestNonWeightState:
    def test_vocabulary_argument(self, fmt, reload):
        """A vocabulary passed as an argument is rebuilt, with derived state."""
        tokens = ["<pad>", "a", "b", "ß", "日本"]
        model = keras.Sequential([keras.Input((1,)), Vocabulary(tokens, name="vocab")])
        layer = reload(model).get_layer("vocab")
        assert layer.tokens == tokens
        assert layer.encode(["b", "日本", "zz"]) == [2, 4, -1]

    def test_large_table_as_state_weight(self, fmt, reload, assert_same_weights):
        """A large numeric table kept with add_state_weight survives both formats."""
        ids = keras.Input((2,), dtype="int32")
        model = keras.Model(ids, Lookup(rows=500, name="lookup")(ids))
        layer = model.get_layer("lookup")
        layer.table.assign(layer.table * 0 + 7.0)  # state changed after construction
        restored = reload(model)
        assert_same_weights(model, restored)
        assert restored.get_layer("lookup").trainable_weights == []
        np.testing.assert_array_equal(
            restored.predict(np.array([[0, 499]]), verbose=0), 7.0
        )

    def test_state_weight_refuses_strings(self):
        """add_state_weight explains what to do with non-numeric state."""
        layer = keras.layers.Layer(name="holder")
        with pytest.raises(TypeError) as info:
            add_state_weight(layer, "vocab", ["a", "b"])
        message = str(info.value)
        assert (
            "layer 'holder'" in message and "Received: value with dtype <U1" in message
        )
        assert "constructor argument" in message


class TestSubclassedModel:
    def make(self, rng):
        model = Classifier(width=8, depth=2, name="classifier")
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x = rng.normal(size=(32, 4)).astype("float32")
        y = rng.integers(0, 3, size=(32,))
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return model, x, y

    def test_identical_predictions(self, fmt, reload, rng, assert_same_weights):
        """A subclassed model with nested custom layers reloads with the same outputs."""
        model, x, _ = self.make(rng)
        restored = reload(model)
        assert type(restored) is Classifier
        assert restored.built and restored.width == 8
        assert [type(b) for b in restored.blocks] == [Residual, Residual]
        assert_same_weights(model, restored)
        np.testing.assert_array_equal(
            restored.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_training_resumes_after_keras_reload(self, tmp_path, rng):
        """After a .keras reload, fit continues: same optimizer step and same next weights."""
        model, x, y = self.make(rng)
        path = tmp_path / "model.keras"
        model.save(path)
        restored = keras.models.load_model(path)

        assert (
            int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 8
        )
        for a, b in zip(
            model.optimizer.variables, restored.optimizer.variables, strict=True
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
        restored.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
        for a, b in zip(model.weights, restored.weights, strict=True):
            np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7
            )


class Power(SerializableLoss, package="stories"):
    def __init__(self, power=2, **kwargs):
        super().__init__(**kwargs)
        self.power = power

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** self.power, axis=-1)


class Above(SerializableMetric, package="stories"):
    def __init__(self, threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        self.hits = self.add_variable((), initializer="zeros", name="hits")

    def update_state(self, y_true, y_pred, sample_weight=None):
        above = keras.ops.cast(y_pred > self.threshold, "float32")
        self.hits.assign_add(keras.ops.sum(above))

    def result(self):
        return keras.ops.convert_to_tensor(self.hits)


class Warmup(SerializableLearningRateSchedule, package="stories"):
    def __init__(self, peak=1e-2, steps=10):
        self.peak = peak
        self.steps = steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return self.peak * keras.ops.minimum(1.0, (step + 1.0) / self.steps)


class Fill(SerializableInitializer, package="stories"):
    def __init__(self, value=0.25):
        self.value = value

    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, self.value, dtype=dtype)


class L1(SerializableRegularizer, package="stories"):
    def __init__(self, strength=0.01):
        self.strength = strength

    def __call__(self, x):
        return self.strength * keras.ops.sum(keras.ops.abs(x))


class Clip(SerializableConstraint, package="stories"):
    def __init__(self, limit=1.0):
        self.limit = limit

    def __call__(self, w):
        return keras.ops.clip(w, -self.limit, self.limit)


class TestEveryKind:
    def test_every_base_class_keeps_its_parameters(self, fmt, reload, rng):
        """Loss, metric, schedule, initializer, regularizer and constraint keep their arguments."""
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(
                    2,
                    kernel_initializer=Fill(0.125),
                    kernel_regularizer=L1(0.03),
                    kernel_constraint=Clip(0.75),
                    name="dense",
                ),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=Warmup(peak=0.05, steps=7)),
            loss=Power(power=4),
            metrics=[Above(threshold=0.1)],
        )
        x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
        model.fit(x, y, epochs=1, verbose=0)

        restored = reload(model)

        dense = restored.get_layer("dense")
        assert dense.kernel_initializer.value == 0.125
        assert dense.kernel_regularizer.strength == 0.03
        assert dense.kernel_constraint.limit == 0.75
        schedule = restored.optimizer._learning_rate  # the schedule object itself
        assert isinstance(schedule, Warmup) and (schedule.peak, schedule.steps) == (
            0.05,
            7,
        )
        assert isinstance(restored.loss, Power) and restored.loss.power == 4
        np.testing.assert_allclose(
            restored.evaluate(x, y, verbose=0, return_dict=True)["loss"],
            model.evaluate(x, y, verbose=0, return_dict=True)["loss"],
            rtol=1e-6,
        )

    @pytest.mark.parametrize(
        "obj",
        [
            Power(power=3, name="p3"),
            Above(0.9, name="above"),
            Warmup(0.2, 3),
            Fill(2.0),
            L1(0.5),
            Clip(2.5),
        ],
        ids=lambda o: type(o).__name__,
    )
    def test_serialize_deserialize(self, obj):
        """Each kind round-trips through keras.saving serialize/deserialize."""
        config = keras.saving.serialize_keras_object(obj)
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is type(obj)
        assert clone.get_config() == obj.get_config()
