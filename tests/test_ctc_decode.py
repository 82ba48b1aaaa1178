"""CTC decoding: greedy and beam search against references, and CTCDecoder saved."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

import serializable
from serializable._ctc_decode import ctc_beam_search_numpy
from serializable.ctc import CTCDecoder, ctc_decode, ctc_loss

tf = pytest.importorskip("tensorflow")

needs_tf = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="TensorFlow's native beam decoder runs on the TensorFlow backend only",
)


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def collapse(path, blank, merge_repeated=True):
    """The CTC collapse of one alignment: merge repeats, then drop blanks."""
    labels, previous = [], None
    for c in path:
        if c != blank and (c != previous or not merge_repeated):
            labels.append(int(c))
        previous = c
    return labels


def greedy_reference(logits, lengths, blank, merge_repeated=True):
    batch, steps, _ = logits.shape
    lp = log_softmax(logits)
    paths = np.full((batch, steps), -1)
    scores = np.zeros(batch)
    for b in range(batch):
        n = lengths[b]
        best = lp[b, :n].argmax(-1)
        labels = collapse(best, blank, merge_repeated)
        paths[b, : len(labels)] = labels
        scores[b] = lp[b, :n].max(-1).sum()
    return paths, scores


def exhaustive_labellings(lp, length, blank):
    """Every labelling's exact log-probability (all C^T alignments), best first."""
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(lp.shape[1]), repeat=length):
        score = sum(lp[t, c] for t, c in enumerate(path))
        labels = tuple(collapse(path, blank))
        totals[labels] = np.logaddexp(totals.get(labels, -np.inf), score)
    return sorted(totals.items(), key=lambda item: -item[1])


def textbook_beam_search(lp, length, beam_width, blank):
    """The prefix beam search of Hannun et al., one dict of prefixes per step."""
    beams = {(): (0.0, -np.inf)}  # prefix -> (log p ending in blank, in label)
    for t in range(length):
        new: dict[tuple[int, ...], tuple[float, float]] = {}

        def add(prefix, p_blank, p_label, new=new):
            old_blank, old_label = new.get(prefix, (-np.inf, -np.inf))
            new[prefix] = (
                np.logaddexp(old_blank, p_blank),
                np.logaddexp(old_label, p_label),
            )

        for prefix, (p_blank, p_label) in beams.items():
            total = np.logaddexp(p_blank, p_label)
            add(prefix, total + lp[t, blank], -np.inf)
            if prefix:
                add(prefix, -np.inf, p_label + lp[t, prefix[-1]])
            for c in range(lp.shape[1]):
                if c != blank:
                    previous = p_blank if prefix and prefix[-1] == c else total
                    add(prefix + (c,), -np.inf, previous + lp[t, c])
        ranked = sorted(new.items(), key=lambda item: -np.logaddexp(*item[1]))
        beams = dict(ranked[:beam_width])
    best, (p_blank, p_label) = max(beams.items(), key=lambda i: np.logaddexp(*i[1]))
    return list(best), float(np.logaddexp(p_blank, p_label))


def unpad(row):
    row = np.asarray(row)
    n = int(np.sum(row >= 0))
    assert np.all(row[:n] >= 0) and np.all(row[n:] == -1), row  # left-aligned
    return row[:n].tolist()


def beam(logits, lengths, implementation, **kwargs):
    paths, scores = ctc_decode(
        logits, lengths, strategy="beam_search", implementation=implementation, **kwargs
    )
    return np.asarray(paths), np.asarray(scores)


IMPLEMENTATIONS = [
    "numpy",
    pytest.param("native", marks=needs_tf),
]


class TestGreedy:
    @pytest.mark.parametrize("blank_index", [0, 2, 5, -1])
    @pytest.mark.parametrize("merge_repeated", [True, False])
    def test_matches_reference(self, rng, blank_index, merge_repeated):
        """Paths and scores equal argmax, merge, drop blank, for any blank and ragged lengths."""
        logits = rng.normal(size=(16, 12, 6)).astype("float32")
        lengths = rng.integers(0, 13, size=16)
        paths, scores = ctc_decode(
            logits, lengths, blank_index=blank_index, merge_repeated=merge_repeated
        )
        expected, expected_scores = greedy_reference(
            logits, lengths, blank_index % 6, merge_repeated
        )
        assert keras.backend.standardize_dtype(paths.dtype) == "int32"
        assert keras.backend.standardize_dtype(scores.dtype) == "float32"
        assert tuple(paths.shape) == (1, 16, 12) and tuple(scores.shape) == (16, 1)
        np.testing.assert_array_equal(np.asarray(paths)[0], expected)
        np.testing.assert_allclose(np.asarray(scores)[:, 0], expected_scores, rtol=1e-5)

    def test_repeats_need_a_blank_between(self):
        """'a a _ a' decodes to 'a a'; merge_repeated=False keeps every frame's label."""
        onehot = np.eye(3, dtype="float32")[[1, 1, 0, 1, 2, 2]][None] * 10
        paths, _ = ctc_decode(onehot)
        assert unpad(np.asarray(paths)[0, 0]) == [1, 1, 2]
        paths, _ = ctc_decode(onehot, merge_repeated=False)
        assert unpad(np.asarray(paths)[0, 0]) == [1, 1, 1, 2, 2]

    @pytest.mark.parametrize("jit_compile", [False, True])
    def test_compiles(self, rng, jit_compile, compiled):
        """Greedy decoding runs compiled (tf.function, XLA, jax.jit) with the eager result."""
        logits = rng.normal(size=(4, 10, 5)).astype("float32")
        lengths = np.array([10, 3, 0, 7])
        eager = ctc_decode(logits, lengths, blank_index=-1)
        decode = compiled(lambda x, n: ctc_decode(x, n, blank_index=-1), jit_compile)
        paths, scores = decode(logits, lengths)
        np.testing.assert_array_equal(np.asarray(eager[0]), np.asarray(paths))
        np.testing.assert_allclose(np.asarray(eager[1]), np.asarray(scores), rtol=1e-6)

    def test_probabilities_decode_like_logits(self, rng):
        """from_logits=False on softmax(logits) gives the logits' paths."""
        logits = rng.normal(size=(8, 15, 6)).astype("float32")
        probs = np.exp(log_softmax(logits)).astype("float32")
        from_logits, _ = ctc_decode(logits, blank_index=-1)
        from_probs, _ = ctc_decode(probs, blank_index=-1, from_logits=False)
        np.testing.assert_array_equal(np.asarray(from_logits), np.asarray(from_probs))

    def test_lengths_from_mask_or_column(self, rng):
        """A Keras mask and (B, 1) lengths give the same result as (B,) lengths."""
        logits = rng.normal(size=(5, 9, 4)).astype("float32")
        lengths = np.array([9, 4, 1, 0, 6])
        mask = np.arange(9)[None, :] < lengths[:, None]
        expected = np.asarray(ctc_decode(logits, lengths)[0])
        np.testing.assert_array_equal(
            np.asarray(ctc_decode(logits, mask=mask)[0]), expected
        )
        np.testing.assert_array_equal(
            np.asarray(ctc_decode(logits, lengths[:, None])[0]), expected
        )


class TestBeamSearch:
    @pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
    @pytest.mark.parametrize("seed", range(4))
    def test_matches_exhaustive_search(self, implementation, seed):
        """On a tiny alphabet the beam finds the exact best labellings and their probabilities."""
        rng = np.random.default_rng(seed)
        blank_index = [0, 1, 2, -1][seed]
        logits = (rng.normal(size=(4, 5, 3)) * 2).astype("float32")
        lengths = np.array([5, 4, 3, 1])
        paths, scores = beam(
            logits,
            lengths,
            implementation,
            beam_width=16,
            top_paths=3,
            blank_index=blank_index,
        )
        lp = log_softmax(logits)
        for b in range(4):
            ranked = exhaustive_labellings(lp[b], lengths[b], blank_index % 3)
            for k in range(3):
                assert unpad(paths[k, b]) == list(ranked[k][0])
                assert scores[b, k] == pytest.approx(ranked[k][1], abs=1e-4)

    def test_numpy_matches_textbook_prefix_beam_search(self):
        """The vectorized NumPy decoder returns exactly the textbook algorithm's result."""
        for seed in range(3):
            rng = np.random.default_rng(seed)
            logits = rng.normal(size=(8, 30, 6)) * 2
            lengths = rng.integers(1, 31, size=8)
            blank = [0, 5, 2][seed]
            paths, scores = ctc_beam_search_numpy(
                logits, lengths, 10, 1, blank, keep_greedy=False
            )
            lp = log_softmax(logits)
            for b in range(8):
                labels, score = textbook_beam_search(lp[b], lengths[b], 10, blank)
                assert unpad(paths[0, b]) == labels
                assert scores[b, 0] == pytest.approx(score, abs=1e-4)

    @needs_tf
    def test_numpy_and_native_agree(self):
        """NumPy and TensorFlow's decoder agree on the top-1 labelling of almost every row.

        They are not identical: TensorFlow's decoder (ctc_beam_search.h) resets a
        beam's previous probabilities when that beam was pushed out of the beam
        and its parent then re-creates it below the cut, so that beam's
        extensions are skipped for the step; the textbook search keeps them.
        Both scores are lower bounds of the labelling's exact probability.
        """
        agree = rows = 0
        for seed in range(6):
            rng = np.random.default_rng(seed)
            logits = (rng.normal(size=(8, 30, 6)) * 2).astype("float32")
            lengths = rng.integers(1, 31, size=8)
            blank_index = [0, -1, 3][seed % 3]
            ours, our_scores = beam(logits, lengths, "numpy", blank_index=blank_index)
            theirs, their_scores = beam(
                logits, lengths, "native", blank_index=blank_index
            )
            same = np.all(ours[0] == theirs[0], axis=1)
            agree += int(same.sum())
            rows += 8
            np.testing.assert_allclose(our_scores[same], their_scores[same], atol=1.0)
            exact = -np.asarray(
                ctc_loss(
                    np.where(ours[0] < 0, -1, ours[0]),
                    logits,
                    lengths,
                    blank_index=blank_index,
                )
            )
            assert np.all(our_scores[:, 0] <= exact + 1e-3)
        assert agree >= 0.9 * rows

    @pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
    def test_top_paths_best_first_and_distinct(self, rng, implementation):
        """top_paths come best first, are distinct labellings, and the first is the top-1 result."""
        logits = rng.normal(size=(6, 12, 5)).astype("float32")
        lengths = rng.integers(3, 13, size=6)
        paths, scores = beam(logits, lengths, implementation, top_paths=4)
        top1, top1_scores = beam(logits, lengths, implementation, top_paths=1)
        assert paths.shape == (4, 6, 12) and scores.shape == (6, 4)
        assert np.all(np.diff(scores, axis=1) <= 1e-6)
        np.testing.assert_array_equal(paths[0], top1[0])
        np.testing.assert_allclose(scores[:, 0], top1_scores[:, 0], rtol=1e-5)
        for b in range(6):
            labellings = {tuple(unpad(paths[k, b])) for k in range(4)}
            assert len(labellings) == 4

    @pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
    def test_more_paths_than_labellings(self, rng, implementation):
        """Paths that cannot exist (a length-0 input has one) are all -1 with score -inf."""
        logits = rng.normal(size=(2, 4, 3)).astype("float32")
        paths, scores = beam(logits, [0, 1], implementation, top_paths=5)
        assert np.all(paths[:, 0] == -1)
        assert scores[0, 0] == 0.0 and np.all(np.isneginf(scores[0, 1:]))
        # One frame, two labels: "", "a", "b" exist; nothing else.
        assert np.all(np.isfinite(scores[1, :3])) and np.all(np.isneginf(scores[1, 3:]))
        assert np.all(paths[3:, 1] == -1)

    @pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
    def test_blank_only_alphabet(self, implementation):
        """With the blank as the only class, the one labelling is empty, probability 1."""
        paths, scores = beam(
            np.zeros((2, 4, 1), "float32"), [4, 0], implementation, top_paths=2
        )
        assert np.all(paths == -1)
        np.testing.assert_array_equal(scores, [[0.0, -np.inf], [0.0, -np.inf]])

    @pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
    def test_frames_past_the_length_are_ignored(self, rng, implementation):
        """Changing frames past a sample's input length changes nothing."""
        logits = rng.normal(size=(5, 20, 6)).astype("float32")
        lengths = np.array([20, 11, 5, 1, 0])
        noisy = logits.copy()
        for b, n in enumerate(lengths):
            noisy[b, n:] = rng.normal(size=(20 - n, 6)) * 10
        a, sa = beam(logits, lengths, implementation, top_paths=2, blank_index=-1)
        b_, sb = beam(noisy, lengths, implementation, top_paths=2, blank_index=-1)
        np.testing.assert_array_equal(a, b_)
        np.testing.assert_allclose(sa, sb)
        for b, n in enumerate(lengths):
            short, _ = beam(logits[b : b + 1, :n], [n], implementation, blank_index=-1)
            assert unpad(short[0, 0]) == unpad(a[0, b])

    @pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
    def test_probabilities_and_mask(self, rng, implementation):
        """Softmax inputs with from_logits=False, and mask-derived lengths, decode like logits."""
        logits = rng.normal(size=(6, 15, 5)).astype("float32")
        lengths = np.array([15, 9, 3, 12, 1, 7])
        probs = np.exp(log_softmax(logits)).astype("float32")
        mask = np.arange(15)[None, :] < lengths[:, None]
        expected, _ = beam(logits, lengths, implementation, blank_index=2)
        from_probs, _ = beam(
            probs, lengths, implementation, blank_index=2, from_logits=False
        )
        masked, _ = beam(logits, None, implementation, blank_index=2, mask=mask)
        np.testing.assert_array_equal(from_probs, expected)
        np.testing.assert_array_equal(masked, expected)

    def test_numpy_refuses_symbolic_inputs(self, rng, compiled):
        """The NumPy decoder inside a compiled function fails with a message saying how to fix it."""
        logits = rng.normal(size=(2, 6, 4)).astype("float32")
        decode = compiled(
            lambda x: ctc_decode(x, strategy="beam_search", implementation="numpy"),
            jit_compile=True,
        )
        with pytest.raises(ValueError, match="runs eagerly.*jit_compile=False"):
            decode(logits)

    @needs_tf
    def test_native_compiles(self, rng):
        """TensorFlow's decoder runs inside tf.function with the eager result."""
        logits = rng.normal(size=(4, 10, 5)).astype("float32")
        lengths = np.array([10, 2, 0, 7])

        def run(x, n):
            return ctc_decode(x, n, strategy="beam_search", top_paths=3, blank_index=-2)

        eager = run(logits, lengths)
        compiled = tf.function(run)(logits, lengths)
        np.testing.assert_array_equal(np.asarray(eager[0]), np.asarray(compiled[0]))
        np.testing.assert_allclose(np.asarray(eager[1]), np.asarray(compiled[1]))


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"strategy": "beam"}, r"strategy.*Received: strategy='beam'"),
            (
                {"strategy": "beam_search", "beam_width": 0},
                r"beam_width.*>= 1.*Received: beam_width=0",
            ),
            ({"beam_width": 2.5}, r"beam_width.*int.*Received: beam_width=2.5"),
            (
                {"strategy": "beam_search", "top_paths": 4, "beam_width": 3},
                r"1 <= top_paths <= beam_width \(3\).*Received: top_paths=4",
            ),
            ({"strategy": "beam_search", "top_paths": 0}, r"Received: top_paths=0"),
            (
                {"top_paths": 2},
                r"greedy decoding yields one path.*Received: top_paths=2.*beam_search",
            ),
            (
                {"strategy": "beam_search", "merge_repeated": False},
                r"merge_repeated.*Received: merge_repeated=False",
            ),
            ({"blank_index": 4}, r"-4 <= blank_index < 4.*Received: blank_index=4"),
            ({"blank_index": -5}, r"Received: blank_index=-5"),
            (
                {"implementation": "cuda"},
                r"implementation.*Received: implementation='cuda'",
            ),
        ],
    )
    def test_bad_settings(self, kwargs, message):
        """Each bad setting is refused with what was expected, what was received and the fix."""
        logits = np.zeros((2, 5, 4), dtype="float32")
        with pytest.raises(ValueError, match=message):
            ctc_decode(logits, **kwargs)

    def test_bad_rank(self):
        """y_pred must be (batch, time, classes)."""
        with pytest.raises(
            ValueError,
            match=r"\(batch, time, classes\).*Received: y_pred with shape \(5, 4\)",
        ):
            ctc_decode(np.zeros((5, 4), dtype="float32"))

    def test_layer_refuses_bad_settings_at_construction(self):
        """CTCDecoder checks its settings when it is built, not at the first batch."""
        with pytest.raises(ValueError, match=r"CTCDecoder argument 'strategy'"):
            CTCDecoder(strategy="beams")
        with pytest.raises(ValueError, match=r"CTCDecoder.*top_paths"):
            CTCDecoder(strategy="beam_search", beam_width=2, top_paths=3)

        with pytest.raises(ValueError, match=r"CTCDecoder argument 'token_top_k'"):
            CTCDecoder(strategy="beam_search", token_top_k=0)
        with pytest.raises(ValueError, match=r"CTCDecoder argument 'keep_greedy'"):
            CTCDecoder(strategy="beam_search", keep_greedy="yes")


def inference_model(strategy, blank_index=0, top_paths=1, steps=12, classes=6):
    frames = keras.Input((steps, 8))
    logits = keras.layers.Dense(classes)(frames)
    labels = CTCDecoder(
        strategy=strategy, blank_index=blank_index, top_paths=top_paths, beam_width=8
    )(logits)
    return keras.Model(frames, labels)


class TestCTCDecoder:
    @pytest.mark.parametrize(
        ("strategy", "blank_index", "top_paths"),
        [
            ("greedy", 0, 1),
            ("greedy", -1, 1),
            ("beam_search", -1, 1),
            ("beam_search", 2, 3),
        ],
    )
    def test_round_trips(self, rng, fmt, reload, strategy, blank_index, top_paths):
        """A Dense -> CTCDecoder inference model reloads with its settings and identical outputs."""
        model = inference_model(strategy, blank_index, top_paths)
        frames = rng.normal(size=(5, 12, 8)).astype("float32")
        expected = model.predict(frames, verbose=0)
        shape = (5, 12) if top_paths == 1 else (5, top_paths, 12)
        assert expected.shape == shape and expected.dtype == np.int32
        restored = reload(model)
        layer = restored.layers[-1]
        assert isinstance(layer, CTCDecoder)
        assert (
            layer.strategy,
            layer.blank_index,
            layer.top_paths,
            layer.beam_width,
        ) == (
            strategy,
            blank_index,
            top_paths,
            8,
        )
        np.testing.assert_array_equal(restored.predict(frames, verbose=0), expected)

    PRUNING = {
        "token_top_k": 1,
        "token_min_log_prob": -1.0,
        "beam_threshold": 2.0,
        "keep_greedy": False,
    }

    def test_pruning_settings_round_trip(self, rng, fmt, reload):
        """The beam-search pruning settings are saved, reloaded and used, as in ctc_decode."""
        logits_in = keras.Input((15, 6))
        labels = CTCDecoder(
            strategy="beam_search", beam_width=5, top_paths=2, **self.PRUNING
        )(logits_in)
        model = keras.Model(logits_in, labels)
        logits = (rng.normal(size=(4, 15, 6)) * 3).astype("float32")
        expected, _ = ctc_decode(
            logits, strategy="beam_search", beam_width=5, top_paths=2, **self.PRUNING
        )
        expected = np.transpose(np.asarray(expected), (1, 0, 2))
        unpruned, _ = ctc_decode(
            logits, strategy="beam_search", beam_width=5, top_paths=2
        )
        # The settings prune something here, so using them is observable.
        assert not np.array_equal(expected, np.transpose(unpruned, (1, 0, 2)))
        np.testing.assert_array_equal(model.predict(logits, verbose=0), expected)
        restored = reload(model)
        layer = restored.layers[-1]
        assert {name: getattr(layer, name) for name in self.PRUNING} == self.PRUNING
        assert {k: layer.get_config()[k] for k in self.PRUNING} == self.PRUNING
        np.testing.assert_array_equal(restored.predict(logits, verbose=0), expected)
        np.testing.assert_array_equal(np.asarray(layer(logits)), expected)

    def test_outputs_equal_ctc_decode(self, rng):
        """The layer returns ctc_decode's paths, batch first."""
        logits = rng.normal(size=(4, 10, 5)).astype("float32")
        layer = CTCDecoder(strategy="beam_search", top_paths=2, blank_index=-1)
        paths, _ = ctc_decode(
            logits, strategy="beam_search", top_paths=2, blank_index=-1
        )
        out = np.asarray(layer(logits))
        np.testing.assert_array_equal(out, np.transpose(np.asarray(paths), (1, 0, 2)))
        greedy = np.asarray(CTCDecoder()(logits, np.array([10, 4, 0, 7])))
        np.testing.assert_array_equal(
            greedy, np.asarray(ctc_decode(logits, np.array([10, 4, 0, 7]))[0][0])
        )

    def test_beam_search_layer_opts_out_of_xla(self):
        """Beam search tells Keras it cannot be XLA-compiled, so jit_compile='auto' avoids XLA."""
        from keras.src.trainers.trainer import model_supports_jit

        assert model_supports_jit(inference_model("greedy"))
        assert not model_supports_jit(inference_model("beam_search"))
        assert not inference_model("beam_search").layers[-1].supports_jit

    def test_output_spec(self):
        """Symbolic calls give int32 (batch, time) or (batch, top_paths, time)."""
        logits = keras.KerasTensor((None, 7, 5))
        assert CTCDecoder()(logits).shape == (None, 7)
        assert CTCDecoder()(logits).dtype == "int32"
        spec = CTCDecoder(strategy="beam_search", top_paths=3)(logits)
        assert spec.shape == (None, 3, 7)

    def test_mask_and_length_input(self, rng, fmt, tmp_path):
        """Lengths come from a Keras mask or a length input, and survive a reload.

        Plain Keras cannot reload a mask-consuming Functional model from `.h5`
        (P12), so this loads with `serializable.load_model`, which repairs it.
        """
        frames = keras.Input((10, 4))
        masked = keras.layers.Masking(0.0)(frames)
        logits = keras.layers.Dense(5)(masked)
        from_mask = CTCDecoder(strategy="beam_search", name="from_mask")(logits)
        length = keras.Input((1,), dtype="int32")
        from_input = CTCDecoder(strategy="beam_search", name="from_input")(
            logits, length
        )
        model = keras.Model([frames, length], [from_mask, from_input])
        lengths = np.array([10, 6, 3, 1])
        x = rng.normal(size=(4, 10, 4)).astype("float32")
        x[np.arange(10)[None, :] >= lengths[:, None]] = 0.0
        a, b = model.predict([x, lengths[:, None]], verbose=0)
        np.testing.assert_array_equal(a, b)
        model.save(tmp_path / f"model.{fmt}")
        restored = serializable.load_model(tmp_path / f"model.{fmt}")
        c, d = restored.predict([x, lengths[:, None]], verbose=0)
        np.testing.assert_array_equal(c, a)
        np.testing.assert_array_equal(d, b)

    @pytest.mark.parametrize("strategy", ["greedy", "beam_search"])
    def test_assert_roundtrip_passes(self, tmp_path, strategy):
        """The project's own round-trip check passes on an inference model."""
        serializable.assert_roundtrip(
            inference_model(strategy, blank_index=-1), tmp_path=tmp_path
        )


def peaked_logits(seed, batch=32, steps=60, classes=12, peak=3.0):
    """Trained-model-like outputs: one class per frame well above the others."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, steps, classes)) * 1.5
    path = np.where(
        rng.random((batch, steps)) < 0.5, 0, rng.integers(1, classes, (batch, steps))
    )
    np.put_along_axis(logits, path[:, :, None], peak, axis=2)
    return logits


def exact_log_prob(logits, paths, lengths=None, blank=0):
    """-ctc_loss of each row's labelling: its exact log-probability."""
    lengths = np.full(len(logits), logits.shape[1]) if lengths is None else lengths
    return -np.asarray(
        ctc_loss(
            paths,
            logits.astype("float32"),
            lengths,
            blank_index=blank,
            zero_infinity=True,
        )
    )


class TestPruning:
    """Token and beam pruning, the greedy candidate, exact scores (NumPy decoder)."""

    def test_pruning_that_prunes_nothing_is_exact(self, rng):
        """Thresholds nothing falls below, and top-k = all classes, change nothing."""
        logits = rng.normal(size=(6, 25, 7)) * 2
        lengths = rng.integers(0, 26, size=6)
        plain = ctc_beam_search_numpy(logits, lengths, 8, 3, 2, keep_greedy=False)
        loose = ctc_beam_search_numpy(
            logits,
            lengths,
            8,
            3,
            2,
            keep_greedy=False,
            token_top_k=6,
            token_min_log_prob=-1e9,
            beam_threshold=1e9,
        )
        np.testing.assert_array_equal(plain[0], loose[0])
        np.testing.assert_array_equal(plain[1], loose[1])

    def test_pruned_search_finds_the_peaked_labelling(self):
        """On peaked outputs, pruning keeps the unpruned search's best labelling."""
        logits = peaked_logits(0, batch=8, peak=8.0)
        lengths = np.full(8, 60)
        plain, _ = ctc_beam_search_numpy(logits, lengths, 10, 1, 0)
        for kwargs in (
            {"token_min_log_prob": -5.0},
            {"token_top_k": 3},
            {"beam_threshold": 10.0},
        ):
            pruned, _ = ctc_beam_search_numpy(logits, lengths, 10, 1, 0, **kwargs)
            np.testing.assert_array_equal(pruned, plain)

    def test_never_less_probable_than_greedy(self):
        """keep_greedy (the default) returns a labelling at least as probable as greedy's.

        The bare prefix beam search does not, on some rows of peaked outputs.
        """
        logits = peaked_logits(1)
        lengths = np.full(32, 60)
        greedy, _ = ctc_decode(logits.astype("float32"))
        greedy_lp = exact_log_prob(logits, np.asarray(greedy[0]))
        bare, _ = ctc_beam_search_numpy(logits, lengths, 4, 1, 0, keep_greedy=False)
        kept, scores = ctc_beam_search_numpy(logits, lengths, 4, 1, 0)
        assert np.any(exact_log_prob(logits, bare[0]) < greedy_lp - 1e-3)
        kept_lp = exact_log_prob(logits, kept[0])
        assert np.all(kept_lp >= greedy_lp - 1e-3)

    def test_exact_scores(self, rng):
        """exact_scores gives each returned labelling's forward-algorithm log-probability."""
        logits = rng.normal(size=(5, 20, 6)) * 2
        lengths = np.array([20, 13, 1, 0, 7])
        paths, scores = ctc_beam_search_numpy(
            logits, lengths, 6, 3, 0, exact_scores=True
        )
        for p in range(3):
            expected = exact_log_prob(logits, paths[p], lengths)
            finite = np.isfinite(scores[:, p])
            np.testing.assert_allclose(scores[finite, p], expected[finite], atol=1e-3)
        _, beam_scores = ctc_beam_search_numpy(logits, lengths, 6, 3, 0)
        assert np.all(scores[:, 0] >= beam_scores[:, 0] - 1e-4)

    def test_forward_scores_match_exhaustive_sums(self, rng):
        """The (banded) forward algorithm behind keep_greedy/exact_scores sums every alignment.

        Rows of different lengths share one pass; labellings too long for
        their row, with repeats, and empty ones included.
        """
        from serializable._ctc_decode import _labelling_log_prob

        lp = log_softmax(rng.normal(size=(6, 5, 3)) * 2)
        lengths = np.array([5, 4, 3, 1, 0, 5])
        labels = np.array(
            [[1, 2, 1], [2, 2, -1], [1, 1, 2], [1, 2, -1], [-1, -1, -1], [2, -1, -1]]
        )
        got = _labelling_log_prob(lp, lengths, labels, 0)
        for b in range(6):
            table = dict(exhaustive_labellings(lp[b], lengths[b], 0))
            expected = table.get(tuple(unpad(labels[b])), -np.inf)
            assert got[b] == pytest.approx(expected, abs=1e-9)

    def test_through_ctc_decode(self, rng):
        """ctc_decode passes the settings to the NumPy decoder, on every backend."""
        logits = rng.normal(size=(3, 15, 5)).astype("float32")
        paths, scores = ctc_decode(
            logits,
            strategy="beam_search",
            token_top_k=2,
            beam_threshold=5.0,
            exact_scores=True,
        )
        expected = ctc_beam_search_numpy(
            logits,
            np.full(3, 15),
            10,
            1,
            0,
            token_top_k=2,
            beam_threshold=5.0,
            exact_scores=True,
        )
        np.testing.assert_array_equal(np.asarray(paths), expected[0])
        np.testing.assert_allclose(np.asarray(scores), expected[1], rtol=1e-6)

    def test_keep_greedy_through_ctc_decode(self):
        """ctc_decode's keep_greedy reaches the NumPy decoder (True selects it on TensorFlow)."""
        logits = peaked_logits(1, batch=32, steps=60)
        lengths = np.full(32, 60)
        results = []
        for keep, implementation in ((True, "auto"), (False, "numpy")):
            paths, _ = ctc_decode(
                logits.astype("float32"),
                strategy="beam_search",
                beam_width=4,
                keep_greedy=keep,
                implementation=implementation,
            )
            expected, _ = ctc_beam_search_numpy(
                logits.astype("float32"), lengths, 4, 1, 0, keep_greedy=keep
            )
            np.testing.assert_array_equal(np.asarray(paths), expected)
            results.append(expected)
        assert not np.array_equal(*results)  # the setting matters on this data

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"token_top_k": 0}, "'token_top_k' must be None"),
            ({"token_top_k": 2.0}, "'token_top_k' must be None"),
            ({"token_min_log_prob": "x"}, "'token_min_log_prob' must be None"),
            ({"beam_threshold": -1.0}, "'beam_threshold' must be None"),
            ({"keep_greedy": 1}, "'keep_greedy' must be None"),
        ],
    )
    def test_bad_settings(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            ctc_decode(np.zeros((1, 3, 4), "float32"), strategy="beam_search", **kwargs)

    @needs_tf
    def test_native_refuses_numpy_settings(self):
        with pytest.raises(ValueError, match="settings of the NumPy beam search"):
            ctc_decode(
                np.zeros((1, 3, 4), "float32"),
                strategy="beam_search",
                implementation="native",
                beam_threshold=3.0,
            )
