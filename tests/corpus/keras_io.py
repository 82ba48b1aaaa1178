"""keras.io-style user code, written as users write it: no get_config.

Each builder returns `(model, inputs)`: a tiny model, compiled and trained a
step or two where it trains, and a batch to compare outputs on. The classes
subclass keras-serializable's base classes, which generate their configs.
"""

from __future__ import annotations

import keras
import numpy as np

from serializable import (
    SerializableLayer,
    SerializableLearningRateSchedule,
    SerializableLoss,
    SerializableMetric,
    SerializableModel,
    add_state_weight,
)
from serializable.ctc import CTCLayer

PACKAGE = "corpus_keras_io"


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------------------
# Variational autoencoder: Sampling layer, custom train_step
# ---------------------------------------------------------------------------


class Sampling(SerializableLayer, package=PACKAGE):
    """Draws z from (z_mean, z_log_var), as on keras.io."""

    def __init__(self, seed=1337, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(keras.ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + keras.ops.exp(0.5 * z_log_var) * epsilon


class VAE(SerializableModel, package=PACKAGE):
    """keras.io's VAE, tiny: the train_step calls encoder and decoder itself."""

    def __init__(self, features=6, latent_dim=2, **kwargs):
        super().__init__(**kwargs)
        self.features = features
        self.latent_dim = latent_dim
        inputs = keras.Input((features,))
        hidden = keras.layers.Dense(8, activation="relu")(inputs)
        z_mean = keras.layers.Dense(latent_dim, name="z_mean")(hidden)
        z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(hidden)
        z = Sampling()([z_mean, z_log_var])
        self.encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")
        latent = keras.Input((latent_dim,))
        self.decoder = keras.Model(
            latent,
            keras.layers.Dense(features)(keras.layers.Dense(8, "relu")(latent)),
            name="decoder",
        )
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker]

    def call(self, x):
        _, _, z = self.encoder(x)
        return self.decoder(z)

    def _loss(self, data):
        z_mean, z_log_var, z = self.encoder(data)
        reconstruction = self.decoder(z)
        reconstruction_loss = keras.ops.mean(
            keras.ops.sum(keras.ops.square(data - reconstruction), axis=1)
        )
        kl = -0.5 * (
            1 + z_log_var - keras.ops.square(z_mean) - keras.ops.exp(z_log_var)
        )
        return reconstruction_loss + keras.ops.mean(keras.ops.sum(kl, axis=1))

    def train_step(self, data):
        if isinstance(data, tuple):
            data = data[0]
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                total_loss = self._loss(data)
            grads = tape.gradient(total_loss, self.trainable_weights)
        elif backend == "torch":
            self.zero_grad()
            total_loss = self._loss(data)
            total_loss.backward()
            grads = [v.value.grad for v in self.trainable_weights]
        else:  # pragma: no cover - the corpus skips this model on JAX
            raise NotImplementedError(backend)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        return {"loss": self.total_loss_tracker.result()}


def vae(build_after_fit: bool = True):
    x = _rng().normal(size=(16, 6)).astype("float32")
    model = VAE(6, 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    if build_after_fit:
        model(x[:1])  # fit through a custom train_step leaves the model unbuilt
    return model, x[:4]


# ---------------------------------------------------------------------------
# Transformer text classifier
# ---------------------------------------------------------------------------


class TransformerBlock(SerializableLayer, package=PACKAGE):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.rate = rate
        self.att = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim
        )
        self.ffn = keras.Sequential(
            [
                keras.layers.Dense(ff_dim, activation="relu"),
                keras.layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        out1 = self.layernorm1(inputs + self.dropout1(attn_output, training=training))
        ffn_output = self.ffn(out1)
        return self.layernorm2(out1 + self.dropout2(ffn_output, training=training))


class TokenAndPositionEmbedding(SerializableLayer, package=PACKAGE):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen = maxlen
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.token_emb = keras.layers.Embedding(vocab_size, embed_dim)
        self.pos_emb = keras.layers.Embedding(maxlen, embed_dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.token_emb(x) + self.pos_emb(positions)


def text_classifier():
    inputs = keras.Input((6,), dtype="int32")
    x = TokenAndPositionEmbedding(6, 20, 8)(inputs)
    x = TransformerBlock(8, 2, 8)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train = _rng().integers(0, 20, size=(8, 6)).astype("int32")
    model.fit(x_train, np.arange(8) % 2, epochs=1, batch_size=4, verbose=0)
    return model, x_train[:4]


# ---------------------------------------------------------------------------
# Captcha OCR: convolutions, a BiLSTM and the CTC endpoint layer
# ---------------------------------------------------------------------------


def captcha_ocr():
    width, height, classes, max_len = 16, 8, 5, 3
    image = keras.Input((width, height, 1), name="image")
    labels = keras.Input((max_len,), dtype="float32", name="label")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Reshape((width // 2, (height // 2) * 4))(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(x)
    x = keras.layers.Dense(classes + 1)(x)
    output = CTCLayer(blank_index=-1, name="ctc_loss")(x, labels)
    model = keras.Model([image, labels], output, name="ocr_model_v1")
    model.compile(optimizer=keras.optimizers.Adam())
    rng = _rng()
    images = rng.normal(size=(4, width, height, 1)).astype("float32")
    targets = rng.integers(0, classes, size=(4, max_len)).astype("float32")
    model.fit({"image": images, "label": targets}, epochs=1, batch_size=2, verbose=0)
    return model, {"image": images, "label": targets}


# ---------------------------------------------------------------------------
# Custom loss and metric, warmup schedule
# ---------------------------------------------------------------------------


class FocalMSE(SerializableLoss, package=PACKAGE):
    def __init__(self, gamma=2.0, **kwargs):
        super().__init__(**kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        error = keras.ops.abs(y_true - y_pred)
        return keras.ops.mean(error**self.gamma, axis=-1)


class MaxError(SerializableMetric, package=PACKAGE):
    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.worst = self.add_variable((), initializer="zeros", name="worst")

    def update_state(self, y_true, y_pred, sample_weight=None):
        error = keras.ops.max(keras.ops.abs(y_true - y_pred)) * self.scale
        self.worst.assign(keras.ops.maximum(self.worst, error))

    def result(self):
        return keras.ops.convert_to_tensor(self.worst)


class WarmUp(SerializableLearningRateSchedule, package=PACKAGE):
    """Linear warmup, then the wrapped schedule (keras.io's WarmUp)."""

    def __init__(self, after, warmup_steps=4, peak=1e-2):
        self.after = after
        self.warmup_steps = warmup_steps
        self.peak = peak

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * step / self.warmup_steps
        return keras.ops.where(
            step < self.warmup_steps, warm, self.after(step - self.warmup_steps)
        )


def loss_metric_schedule():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(2)]
    )
    schedule = WarmUp(keras.optimizers.schedules.CosineDecay(1e-2, 100), 4, 1e-2)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=FocalMSE(gamma=1.5),
        metrics=[MaxError(scale=2.0)],
    )
    rng = _rng()
    x, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    return model, x[:4].astype("float32")


# ---------------------------------------------------------------------------
# Embedding(mask_zero) + LSTM; lookup-table state; multi-input dict output
# ---------------------------------------------------------------------------


def masked_lstm():
    inputs = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    x = keras.layers.LSTM(4)(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile("adam", "mse")
    ids = _rng().integers(0, 10, size=(8, 5)).astype("int32")
    ids[:, 3:] = 0  # padding
    model.fit(ids, np.ones((8, 1)), epochs=1, batch_size=4, verbose=0)
    return model, ids[:4]


class Lookup(SerializableLayer, package=PACKAGE):
    """A fixed table computed outside training, kept as a state weight."""

    def __init__(self, table_size=10, dim=3, **kwargs):
        super().__init__(**kwargs)
        self.table_size = table_size
        self.dim = dim
        table = np.random.default_rng(7).normal(size=(table_size, dim))
        self.table = add_state_weight(self, "table", table.astype("float32"))

    def call(self, ids):
        return keras.ops.take(self.table, ids, axis=0)


def lookup_table():
    inputs = keras.Input((4,), dtype="int32")
    x = keras.layers.Flatten()(Lookup(10, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.compile("sgd", "mse")
    ids = _rng().integers(0, 10, size=(8, 4)).astype("int32")
    model.fit(ids, np.zeros((8, 2)), epochs=1, batch_size=4, verbose=0)
    return model, ids[:4]


def multi_input_dict_output():
    title = keras.Input((4,), dtype="int32", name="title")
    body = keras.Input((6,), dtype="int32", name="body")
    tags = keras.Input((3,), name="tags")
    embed = keras.layers.Embedding(12, 4)
    features = keras.layers.Concatenate()(
        [
            keras.layers.GlobalAveragePooling1D()(embed(title)),
            keras.layers.GlobalAveragePooling1D()(embed(body)),
            tags,
        ]
    )
    priority = keras.layers.Dense(1, name="priority")(features)
    department = keras.layers.Dense(3, activation="softmax", name="department")(
        features
    )
    model = keras.Model(
        {"title": title, "body": body, "tags": tags},
        {"priority": priority, "department": department},
    )
    model.compile(
        optimizer="adam",
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.SparseCategoricalCrossentropy(),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    rng = _rng()
    inputs = {
        "title": rng.integers(0, 12, size=(8, 4)).astype("int32"),
        "body": rng.integers(0, 12, size=(8, 6)).astype("int32"),
        "tags": rng.uniform(size=(8, 3)).astype("float32"),
    }
    targets = {
        "priority": rng.uniform(size=(8, 1)).astype("float32"),
        "department": rng.integers(0, 3, size=(8, 1)),
    }
    model.fit(inputs, targets, epochs=1, batch_size=4, verbose=0)
    return model, {k: v[:4] for k, v in inputs.items()}


# ---------------------------------------------------------------------------
# GAN: two optimizers, compile(d_optimizer=..., g_optimizer=..., loss_fn=...)
# ---------------------------------------------------------------------------


class GAN(SerializableModel, package=PACKAGE):
    """keras.io's GAN, tiny: its own compile() takes two optimizers and a loss
    function, and its train_step updates discriminator and generator in turn."""

    def __init__(self, features=4, latent_dim=2, **kwargs):
        super().__init__(**kwargs)
        self.features = features
        self.latent_dim = latent_dim
        self.discriminator = keras.Sequential(
            [
                keras.Input((features,)),
                keras.layers.Dense(4, "relu"),
                keras.layers.Dense(1),
            ],
            name="discriminator",
        )
        self.generator = keras.Sequential(
            [
                keras.Input((latent_dim,)),
                keras.layers.Dense(4, "relu"),
                keras.layers.Dense(features),
            ],
            name="generator",
        )
        self.seed_generator = keras.random.SeedGenerator(1337)
        # As keras.io's conditional GAN: the trackers are made in __init__.
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def call(self, z):
        return self.discriminator(self.generator(z))

    def _step(self, optimizer, variables, loss):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                value = loss()
            grads = tape.gradient(value, variables)
        elif backend == "torch":
            self.zero_grad()
            value = loss()
            value.backward()
            grads = [v.value.grad for v in variables]
        else:  # pragma: no cover - the corpus skips this model on JAX
            raise NotImplementedError(backend)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return value

    def train_step(self, data):
        real = data[0] if isinstance(data, tuple) else data
        batch = keras.ops.shape(real)[0]
        ops = keras.ops
        latent = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        combined = ops.concatenate([self.generator(latent), real], axis=0)
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        d_loss = self._step(
            self.d_optimizer,
            self.discriminator.trainable_weights,
            lambda: self.loss_fn(labels, self.discriminator(combined)),
        )
        latent = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        g_loss = self._step(
            self.g_optimizer,
            self.generator.trainable_weights,
            lambda: self.loss_fn(
                ops.zeros((batch, 1)), self.discriminator(self.generator(latent))
            ),
        )
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {
            "d_loss": self.d_loss_metric.result(),
            "g_loss": self.g_loss_metric.result(),
        }


def gan():
    real = _rng().normal(size=(16, 4)).astype("float32")
    z = _rng().normal(size=(4, 2)).astype("float32")
    model = GAN(4, 2)
    # Built on latent vectors first: fit would build it by calling it on the
    # real samples (torch), and a custom train_step leaves it unbuilt (tf).
    model(z)
    model.compile(
        d_optimizer=keras.optimizers.Adam(3e-4),
        g_optimizer=keras.optimizers.Adam(1e-3),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    model.fit(real, epochs=1, batch_size=8, verbose=0)
    return model, z


# ---------------------------------------------------------------------------
# The whole corpus: name -> builder
# ---------------------------------------------------------------------------

MODELS = {
    "vae": vae,
    "text_classifier": text_classifier,
    "captcha_ocr": captcha_ocr,
    "loss_metric_schedule": loss_metric_schedule,
    "masked_lstm": masked_lstm,
    "lookup_table": lookup_table,
    "multi_input_dict_output": multi_input_dict_output,
    "gan": gan,
}

__all__ = ["MODELS"]
