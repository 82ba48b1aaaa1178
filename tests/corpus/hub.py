"""keras-hub layers, backbones and task models, tiny and built from
constructor arguments (no presets, nothing downloaded).

Each builder returns `(obj, inputs)`: a built layer or model, trained for a
step where it trains, and a batch to compare outputs on. Import this module
only where `keras_hub` is importable.
"""

from __future__ import annotations

import keras
import keras_hub
import numpy as np

SEQ = 6
VOCAB = 20


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _tokens(batch: int = 4) -> np.ndarray:
    return _rng().integers(1, VOCAB, size=(batch, SEQ)).astype("int32")


def _floats(*shape: int) -> np.ndarray:
    return _rng().normal(size=shape).astype("float32")


def _text_inputs(batch: int = 4, segments: bool = False) -> dict[str, np.ndarray]:
    inputs = {
        "token_ids": _tokens(batch),
        "padding_mask": np.ones((batch, SEQ), "int32"),
    }
    if segments:
        inputs["segment_ids"] = np.zeros((batch, SEQ), "int32")
    return inputs


def _built(layer: keras.layers.Layer, *inputs: np.ndarray) -> keras.layers.Layer:
    layer(*inputs)
    return layer


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------


def transformer_encoder():
    x = _floats(4, SEQ, 8)
    return _built(keras_hub.layers.TransformerEncoder(16, num_heads=2), x), x


def transformer_decoder():
    x = _floats(4, SEQ, 8)
    return _built(keras_hub.layers.TransformerDecoder(16, num_heads=2), x), x


def position_embedding():
    x = _floats(4, SEQ, 8)
    return _built(keras_hub.layers.PositionEmbedding(sequence_length=SEQ), x), x


def token_and_position_embedding():
    ids = _tokens()
    layer = keras_hub.layers.TokenAndPositionEmbedding(VOCAB, SEQ, 8)
    return _built(layer, ids), ids


def rotary_embedding():
    x = _floats(4, SEQ, 8)
    return _built(keras_hub.layers.RotaryEmbedding(max_wavelength=100), x), x


def reversible_embedding():
    ids = _tokens()
    layer = keras_hub.layers.ReversibleEmbedding(VOCAB, 8, tie_weights=True)
    return _built(layer, ids), ids


def masked_lm_head():
    embedding = keras_hub.layers.ReversibleEmbedding(VOCAB, 8)
    embedding(_tokens())
    head = keras_hub.layers.MaskedLMHead(token_embedding=embedding)
    inputs = keras.Input((SEQ, 8))
    positions = keras.Input((2,), dtype="int32")
    model = keras.Model([inputs, positions], head(inputs, mask_positions=positions))
    return model, [_floats(4, SEQ, 8), np.tile(np.array([[1, 3]], "int32"), (4, 1))]


def sine_position_encoding():
    x = _floats(4, SEQ, 8)
    return _built(keras_hub.layers.SinePositionEncoding(max_wavelength=100), x), x


# ---------------------------------------------------------------------------
# Backbones
# ---------------------------------------------------------------------------


def _bert_backbone():
    return keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=SEQ,
    )


def bert_backbone():
    return _bert_backbone(), _text_inputs(segments=True)


def _gpt2_backbone():
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=SEQ,
    )


def gpt2_backbone():
    return _gpt2_backbone(), _text_inputs()


def _vit_backbone():
    return keras_hub.models.ViTBackbone(
        image_shape=(8, 8, 3),
        patch_size=4,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        mlp_dim=16,
    )


def vit_backbone():
    return _vit_backbone(), _floats(4, 8, 8, 3)


def _resnet_backbone():
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64],
        stackwise_num_blocks=[1],
        stackwise_num_strides=[1],
        block_type="basic_block",
        image_shape=(8, 8, 3),
    )


def resnet_backbone():
    return _resnet_backbone(), _floats(4, 8, 8, 3)


def gemma_backbone():
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        head_dim=4,
    )
    return backbone, _text_inputs()


def _llama_backbone():
    return keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
    )


def llama_backbone():
    return _llama_backbone(), _text_inputs()


# ---------------------------------------------------------------------------
# Task models (preprocessor=None: token ids in, nothing downloaded)
# ---------------------------------------------------------------------------


def _task_batch(model: keras.Model):
    if isinstance(model, keras_hub.models.ImageClassifier):
        return _floats(4, 8, 8, 3)
    segments = isinstance(model, keras_hub.models.BertTextClassifier)
    return _text_inputs(segments=segments)


def bert_text_classifier(train: bool = True):
    model = keras_hub.models.BertTextClassifier(
        _bert_backbone(), num_classes=2, preprocessor=None
    )
    if not train:
        return model, _task_batch(model)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    inputs = _text_inputs(batch=8, segments=True)
    model.fit(
        inputs, np.arange(8) % 2, batch_size=4, epochs=1, verbose=0, shuffle=False
    )
    return model, {k: v[:4] for k, v in inputs.items()}


def gpt2_causal_lm(train: bool = True):
    model = keras_hub.models.GPT2CausalLM(_gpt2_backbone(), preprocessor=None)
    if not train:
        return model, _task_batch(model)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    inputs = _text_inputs(batch=8)
    model.fit(inputs, _tokens(8), batch_size=4, epochs=1, verbose=0, shuffle=False)
    return model, {k: v[:4] for k, v in inputs.items()}


def llama_causal_lm(train: bool = True):
    model = keras_hub.models.LlamaCausalLM(_llama_backbone(), preprocessor=None)
    if not train:
        return model, _task_batch(model)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    inputs = _text_inputs(batch=8)
    model.fit(inputs, _tokens(8), batch_size=4, epochs=1, verbose=0, shuffle=False)
    return model, {k: v[:4] for k, v in inputs.items()}


def vit_image_classifier(train: bool = True):
    model = keras_hub.models.ViTImageClassifier(
        _vit_backbone(), num_classes=3, preprocessor=None
    )
    if not train:
        return model, _task_batch(model)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    images = _floats(8, 8, 8, 3)
    model.fit(
        images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0, shuffle=False
    )
    return model, images[:4]


def resnet_image_classifier(train: bool = True):
    model = keras_hub.models.ResNetImageClassifier(
        _resnet_backbone(), num_classes=3, preprocessor=None
    )
    if not train:
        return model, _task_batch(model)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    images = _floats(8, 8, 8, 3)
    model.fit(
        images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0, shuffle=False
    )
    return model, images[:4]


LAYERS = {
    "TransformerEncoder": transformer_encoder,
    "TransformerDecoder": transformer_decoder,
    "PositionEmbedding": position_embedding,
    "TokenAndPositionEmbedding": token_and_position_embedding,
    "RotaryEmbedding": rotary_embedding,
    "ReversibleEmbedding": reversible_embedding,
    "MaskedLMHead": masked_lm_head,
    "SinePositionEncoding": sine_position_encoding,
}
BACKBONES = {
    "BertBackbone": bert_backbone,
    "GPT2Backbone": gpt2_backbone,
    "ViTBackbone": vit_backbone,
    "ResNetBackbone": resnet_backbone,
    "GemmaBackbone": gemma_backbone,
    "LlamaBackbone": llama_backbone,
}
TASKS = {
    "BertTextClassifier": bert_text_classifier,
    "GPT2CausalLM": gpt2_causal_lm,
    "LlamaCausalLM": llama_causal_lm,
    "ViTImageClassifier": vit_image_classifier,
    "ResNetImageClassifier": resnet_image_classifier,
}
MODELS = {**LAYERS, **BACKBONES, **TASKS}
