"""Edit distance, CER and WER: exact against a pure-Python reference, compiled, saved."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import serializable
import serializable.ctc
from serializable import _ctc_metrics
from serializable.ctc import CharacterErrorRate, WordErrorRate, edit_distance

tf = pytest.importorskip("tensorflow")


def shape_polymorphic(fn, dtype):
    """`fn` of two (batch, length) int batches, traced once for unknown widths.

    TensorFlow: a `tf.function` with `(None, None)` signatures. JAX: `jax.export`
    with symbolic dimensions (which JAX requires to be >= 1). torch: skipped,
    Keras runs it eagerly.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        spec = tf.TensorSpec((None, None), dtype)
        return tf.function(fn, input_signature=[spec, spec], autograph=False)
    if backend == "jax":
        import jax
        from jax import export

        batch, width_a, width_b = export.symbolic_shape("b, wa, wb")
        exported = export.export(jax.jit(fn))(
            jax.ShapeDtypeStruct((batch, width_a), dtype),
            jax.ShapeDtypeStruct((batch, width_b), dtype),
        )
        return exported.call
    pytest.skip(f"Keras runs the {backend!r} backend eagerly: no unknown shapes")


def levenshtein(a, b):
    """Textbook Levenshtein distance between two Python sequences."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            )
        previous = current
    return previous[-1]


def unpad(row, pad_value=-1):
    """The tokens of a padded row: up to the first pad value or negative."""
    tokens = []
    for value in row:
        if value == pad_value or value < 0:
            break
        tokens.append(int(value))
    return tokens


def words(row, separator, pad_value=-1):
    """The words of a padded row, as tuples of labels."""
    runs = itertools.groupby(unpad(row, pad_value), key=lambda v: v == separator)
    return [tuple(run) for is_separator, run in runs if not is_separator]


LABELS = st.integers(-2, 4)


@st.composite
def padded_batches(draw, values=LABELS):
    """A (truth, hypothesis, pad_value) triple, zero widths and padding included."""
    batch = draw(st.integers(1, 4))
    width_a, width_b = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    truth = draw(st.lists(values, min_size=batch * width_a, max_size=batch * width_a))
    hyp = draw(st.lists(values, min_size=batch * width_b, max_size=batch * width_b))
    pad_value = draw(st.sampled_from([-1, -2, 0, 3]))
    return (
        np.array(truth, dtype="int32").reshape(batch, width_a),
        np.array(hyp, dtype="int32").reshape(batch, width_b),
        pad_value,
    )


class TestEditDistance:
    @settings(max_examples=100, deadline=None)
    @given(padded_batches())
    def test_matches_reference(self, batch):
        """Each row's distance equals the pure-Python Levenshtein of its unpadded tokens."""
        truth, hyp, pad_value = batch
        got = np.asarray(edit_distance(truth, hyp, pad_value=pad_value))
        expected = [
            levenshtein(unpad(a, pad_value), unpad(b, pad_value))
            for a, b in zip(truth, hyp, strict=True)
        ]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)

    def test_long_sequences_match_reference(self, rng):
        """Ragged rows a few hundred long agree with the reference exactly."""
        truth = rng.integers(0, 5, size=(4, 150))
        hyp = rng.integers(0, 5, size=(4, 130))
        truth[1, 120:] = -1
        hyp[2, 30:] = -1
        hyp[3, :] = -1
        expected = [
            levenshtein(unpad(a), unpad(b)) for a, b in zip(truth, hyp, strict=True)
        ]
        np.testing.assert_array_equal(np.asarray(edit_distance(truth, hyp)), expected)

    def test_empty_sequences_and_padding(self):
        """Empty rows cost the other row's length; anything after the first pad is ignored."""
        truth = np.array([[-1, 1, 2], [1, 2, 3], [1, -1, 9], [-1, -1, -1]])
        hyp = np.array([[4, 5, -1, -1], [-1, 7, 7, 7], [1, -5, 9, 9], [-1, -1, -1, -1]])
        np.testing.assert_array_equal(
            np.asarray(edit_distance(truth, hyp)), [2.0, 3.0, 0.0, 0.0]
        )

    def test_zero_width_inputs(self):
        """Zero-width arrays are empty sequences, on either side."""
        hyp = np.array([[1, 2, -1], [3, -1, -1]])
        np.testing.assert_array_equal(
            np.asarray(edit_distance(np.zeros((2, 0), "int32"), hyp)), [2.0, 1.0]
        )
        np.testing.assert_array_equal(
            np.asarray(edit_distance(hyp, np.zeros((2, 0), "int32"))), [2.0, 1.0]
        )

    def test_negative_values_pad_whatever_the_pad_value(self):
        """With pad_value=0 a decoder's -1 fill still ends the sequence."""
        truth = np.array([[1, 2, 0, 0]])
        hyp = np.array([[1, 2, -1, 5]])
        assert float(edit_distance(truth, hyp, pad_value=0)[0]) == 0.0

    def test_normalize(self):
        """normalize divides by the truth length, with 0/0 = 0 and x/0 = x."""
        truth = np.array([[1, 2, 3, 4], [-1, -1, -1, -1], [-1, -1, -1, -1]])
        hyp = np.array([[1, 3, 4, -1], [5, 6, -1, -1], [-1, -1, -1, -1]])
        np.testing.assert_array_equal(
            np.asarray(edit_distance(truth, hyp, normalize=True)), [0.25, 2.0, 0.0]
        )

    @pytest.mark.parametrize("jit_compile", [False, True])
    def test_compiled_matches_eager(self, rng, jit_compile, compiled):
        """Compiled (tf.function, XLA, jax.jit) the distances are the same as eagerly."""
        truth = rng.integers(-1, 6, size=(8, 30))
        hyp = rng.integers(-1, 6, size=(8, 25))
        distance = compiled(
            lambda a, b: edit_distance(a, b, normalize=True), jit_compile
        )
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(distance(truth, hyp)),
            np.asarray(edit_distance(truth, hyp, normalize=True)),
        )

    def test_compiled_with_unknown_shapes(self, rng):
        """One trace for unknown (batch, width) inputs serves batches of any widths."""
        distance = shape_polymorphic(edit_distance, "int32")
        widths = [(12, 7), (3, 1), (1, 5), (40, 2)]
        if keras.backend.backend() == "tensorflow":  # JAX's symbolic sizes are >= 1
            widths += [(3, 0), (0, 5)]
        for width_a, width_b in widths:
            truth = rng.integers(-1, 4, size=(5, width_a)).astype("int32")
            hyp = rng.integers(-1, 4, size=(5, width_b)).astype("int32")
            expected = [
                levenshtein(unpad(a), unpad(b)) for a, b in zip(truth, hyp, strict=True)
            ]
            got = keras.ops.convert_to_numpy(distance(truth, hyp))
            np.testing.assert_array_equal(got, expected)

    @pytest.mark.parametrize("shape", [(4,), (2, 4, 3)])
    def test_rank_error(self, shape):
        """Inputs that are not (batch, length) are refused with the shape received."""
        with pytest.raises(ValueError, match=r"'hypothesis' must be \(batch, length\)"):
            edit_distance(np.zeros((2, 4)), np.zeros(shape))

    def test_batch_mismatch_error(self):
        """Different batch sizes are refused, naming both."""
        with pytest.raises(ValueError, match="3 truth rows and 2 hypothesis rows"):
            edit_distance(np.zeros((3, 4)), np.zeros((2, 4)))

    def test_pad_value_must_be_int(self):
        """A non-int pad value is a TypeError naming it."""
        with pytest.raises(TypeError, match=r"Received: pad_value=-1\.0"):
            edit_distance(np.zeros((1, 4)), np.zeros((1, 4)), pad_value=-1.0)


class TestCharacterErrorRate:
    truth = np.array([[1, 2, 3, 4, -1], [5, 6, -1, -1, -1]])
    hyp = np.array([[1, 3, 4, 7], [5, 6, 6, -1]])  # 2 edits + 1 edit, over 6 labels

    def test_hand_computed_example(self):
        """Two rows with 2 and 1 edits over 6 truth labels give exactly 0.5."""
        cer = CharacterErrorRate()
        cer.update_state(self.truth, self.hyp)
        assert float(cer.result()) == 0.5
        assert cer.name == "cer"

    def test_accumulates_and_resets(self):
        """Several update_state calls pool edits and lengths; reset_state zeroes them."""
        cer = CharacterErrorRate()
        cer.update_state(self.truth[:1], self.hyp[:1])
        assert float(cer.result()) == 0.5  # 2 / 4
        cer.update_state(self.truth[1:], self.hyp[1:])
        cer.update_state(np.array([[7, 7]]), np.array([[7, 7]]))
        assert float(cer.result()) == 3 / 8
        cer.reset_state()
        assert float(cer.result()) == 0.0
        assert [float(v) for v in cer.variables] == [0.0, 0.0]

    def test_state_lives_in_variables(self):
        """The edit and length totals are metric variables, so they save and restore."""
        cer = CharacterErrorRate()
        cer.update_state(self.truth, self.hyp)
        assert [v.name for v in cer.variables] == ["edits", "length"]
        copy = CharacterErrorRate()
        for target, source in zip(copy.variables, cer.variables, strict=True):
            target.assign(source)
        assert float(copy.result()) == 0.5

    def test_sample_weight(self):
        """sample_weight weights each row's edits and its length."""
        cer = CharacterErrorRate()
        cer.update_state(
            np.array([[1, 2], [3, -1]]), np.array([[1, 2], [4, -1]]), [1, 3]
        )
        assert float(cer.result()) == pytest.approx(3 / 5)

    def test_no_truth_reports_the_edits(self):
        """With no truth labels at all the rate is the edit count (x/0 = x)."""
        cer = CharacterErrorRate()
        assert float(cer.result()) == 0.0
        cer.update_state(np.full((2, 3), -1), np.array([[1, 2, -1], [-1, -1, -1]]))
        assert float(cer.result()) == 2.0

    def test_pad_value(self):
        """A custom pad value pads; negative values pad as well."""
        cer = CharacterErrorRate(pad_value=0)
        cer.update_state(np.array([[3, 4, 0, 9]]), np.array([[3, 5, -1, 9]]))
        assert float(cer.result()) == 0.5

    def test_in_compiled_evaluate(self):
        """Compiled into a model, evaluate gives the hand-computed rates."""
        model = keras.Sequential(
            [keras.Input((4,), dtype="int32"), keras.layers.Identity()]
        )
        model.compile(
            loss=lambda y_true, y_pred: keras.ops.zeros(keras.ops.shape(y_pred)[:1]),
            metrics=[CharacterErrorRate(), WordErrorRate(separator=6)],
        )
        result = model.evaluate(self.hyp, self.truth, verbose=0, return_dict=True)
        assert result["cer"] == 0.5
        assert result["wer"] == 0.5  # words [1 2 3 4] [5] against [1 3 4 7] [5]

    def test_config_roundtrip(self):
        """serialize/deserialize keeps pad_value and name, under the registered name."""
        config = keras.saving.serialize_keras_object(
            CharacterErrorRate(pad_value=-2, name="char_errors")
        )
        assert config["registered_name"] == "serializable>CharacterErrorRate"
        restored = keras.saving.deserialize_keras_object(config)
        assert isinstance(restored, CharacterErrorRate)
        assert restored.pad_value == -2
        assert restored.name == "char_errors"

    def test_assert_roundtrip(self, tmp_path):
        """The project's round-trip check passes with the metric compiled in (both formats)."""
        serializable.assert_roundtrip(
            CharacterErrorRate(pad_value=-2), tmp_path=tmp_path
        )

    @pytest.mark.parametrize("pad_value", [1.0, True, "-1"])
    def test_pad_value_must_be_int(self, pad_value):
        """A pad value that is not an int is refused at construction."""
        with pytest.raises(TypeError, match="'pad_value' must be an int"):
            CharacterErrorRate(pad_value=pad_value)

    def test_rank_error_names_the_decoder(self):
        """Passing (B, T, C) scores instead of decoded sequences is a clear ValueError."""
        cer = CharacterErrorRate()
        with pytest.raises(
            ValueError,
            match=r"'y_pred'.*Received: y_pred with shape \(2, 4, 3\).*decoder",
        ):
            cer.update_state(self.truth, np.zeros((2, 4, 3)))


class TestWordErrorRate:
    def test_hand_computed_example(self):
        """'the cat sat' against 'the bat sat down': one substitution, one insertion."""
        the, cat, sat, bat, down = [1, 2, 3], [4, 5, 1], [6, 5, 1], [7, 5, 1], [8, 9]
        space = 0
        truth = [*the, space, *cat, space, *sat]
        hyp = [*the, space, *bat, space, *sat, space, *down]
        wer = WordErrorRate(separator=space)
        wer.update_state(np.array([truth + [-1] * 10]), np.array([hyp]))
        assert float(wer.result()) == pytest.approx(2 / 3)
        assert wer.name == "wer"

    def test_separator_runs_and_edges(self):
        """Repeated, leading and trailing separators delimit no empty words."""
        wer = WordErrorRate(separator=0)
        wer.update_state(
            np.array([[0, 0, 5, 6, 0, 0, 0, 7, 0, -1]]),
            np.array([[5, 6, 0, 7, -1, -1, -1, -1, -1, -1]]),
        )
        assert float(wer.result()) == 0.0

    def test_words_compare_by_whole_label_sequence(self):
        """A prefix, a permutation or a shifted label makes a different word."""
        wer = WordErrorRate(separator=0)
        truth = np.array([[1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1]])
        hyp = np.array([[1, 2, 3, 0, 2, 1, 0, 0, 1, 2, 0, 1]])
        wer.update_state(truth, hyp)
        # words [1 2] [1 2] [1 2] [1] vs [1 2 3] [2 1] [1 2] [1]: 2 substitutions
        assert float(wer.result()) == 0.5

    @settings(max_examples=50, deadline=None)
    @given(padded_batches(values=st.integers(-1, 3)))
    def test_matches_reference(self, batch):
        """WER equals the word-level Levenshtein over the truth word count."""
        truth, hyp, pad_value = batch
        separator = 2 if pad_value != 2 else 1
        pairs = [
            (words(a, separator, pad_value), words(b, separator, pad_value))
            for a, b in zip(truth, hyp, strict=True)
        ]
        edits = sum(levenshtein(a, b) for a, b in pairs)
        length = sum(len(a) for a, _ in pairs)
        wer = WordErrorRate(separator=separator, pad_value=pad_value)
        wer.update_state(truth, hyp)
        expected = edits / length if length else edits
        assert float(wer.result()) == pytest.approx(expected, rel=1e-6)

    @pytest.mark.parametrize("int_dtype", ["int64", "int32"])
    def test_word_ids_are_distinct_and_positionless(self, monkeypatch, int_dtype):
        """Every word up to 3 labels over 6 gets its own id, wherever it sits (int32 too)."""
        # int32 is what JAX without x64 gives: the hashes switch to small moduli.
        if int_dtype == "int64" and _ctc_metrics._int_dtype() != "int64":
            pytest.skip(f"the {keras.backend.backend()!r} backend has no int64 here")
        monkeypatch.setattr(_ctc_metrics, "_int_dtype", lambda: int_dtype)
        alphabet = range(1, 7)
        vocabulary = [
            list(w) for n in (1, 2, 3) for w in itertools.product(alphabet, repeat=n)
        ]
        row = [v for w in vocabulary for v in [*w, 0]]
        batch = _ctc_metrics._as_int_sequences([[*row, -1, -1], [0, 0, *row]])
        ids = keras.ops.convert_to_numpy(_ctc_metrics._word_ids(batch, -1, 0))
        assert ids.dtype == int_dtype
        first = ids[0][ids[0] >= 0]
        assert len(first) == len(set(first.tolist())) == len(vocabulary)
        np.testing.assert_array_equal(ids[1], ids[0])
        # Each id is exactly the two packed polynomial hashes of its labels.
        moduli = (
            _ctc_metrics._HASH_64 if int_dtype == "int64" else _ctc_metrics._HASH_32
        )
        expected = []
        for word in vocabulary:
            packed = 0
            for modulus, base in moduli:
                digest = sum(
                    (v + 1) * pow(base, k, modulus) for k, v in enumerate(word)
                )
                packed = packed * modulus + digest % modulus
            expected.append(packed)
        np.testing.assert_array_equal(first, expected)

    def test_rows_too_long_for_exact_ids(self, monkeypatch):
        """Rows past the exact-hash limit are refused, naming the limit."""
        monkeypatch.setattr(_ctc_metrics, "_MAX_ROW", {"int64": 8, "int32": 8})
        wer = WordErrorRate(separator=0)
        wer.update_state(np.ones((2, 8)), np.ones((2, 8)))  # at the limit: fine
        with pytest.raises(ValueError, match="rows must hold at most 8 labels"):
            wer.update_state(np.ones((2, 9)), np.ones((2, 8)))

    def test_exact_cumsum_past_int32(self):
        """The word-hash prefix sums stay exact where an int32 sum would wrap."""
        if _ctc_metrics._int_dtype() != "int64":
            pytest.skip(f"the {keras.backend.backend()!r} backend has no int64 here")
        terms = np.full((2, 300), 2**31 - 5, dtype="int64")
        terms[1, ::3] = 7
        got = _ctc_metrics._exact_cumsum(keras.ops.convert_to_tensor(terms))
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(got), np.cumsum(terms, axis=1)
        )

    def test_in_compiled_step(self, rng):
        """Inside a compiled step WER matches eager, also traced for unknown shapes."""
        truth = rng.integers(-1, 5, size=(6, 40))
        hyp = rng.integers(-1, 5, size=(6, 35))
        eager = WordErrorRate(separator=0)
        eager.update_state(truth, hyp)
        expected = float(eager.result())
        assert 0.0 < expected < 2.0
        metric = WordErrorRate(separator=0)
        # The stateless API is how Keras's trainers update metrics compiled.
        int_dtype = _ctc_metrics._int_dtype()

        def step(a, b):
            state = metric.stateless_update_state(metric.variables, a, b)
            return metric.stateless_result(state)

        step = shape_polymorphic(step, int_dtype)
        rate = step(truth.astype(int_dtype), hyp.astype(int_dtype))
        assert float(keras.ops.convert_to_numpy(rate)) == expected

    def test_config_roundtrip(self):
        """serialize/deserialize keeps separator, pad_value and name."""
        config = keras.saving.serialize_keras_object(
            WordErrorRate(separator=3, pad_value=0, name="words")
        )
        assert config["registered_name"] == "serializable>WordErrorRate"
        restored = keras.saving.deserialize_keras_object(config)
        assert isinstance(restored, WordErrorRate)
        assert restored.separator == 3
        assert restored.pad_value == 0
        assert restored.name == "words"

    def test_assert_roundtrip(self, tmp_path):
        """The project's round-trip check passes with the metric compiled in (both formats)."""
        serializable.assert_roundtrip(WordErrorRate(separator=1), tmp_path=tmp_path)

    @pytest.mark.parametrize("separator", [" ", 1.0, False, None])
    def test_separator_must_be_int(self, separator):
        """A separator that is not an int label is a TypeError naming it."""
        with pytest.raises(TypeError, match="'separator' must be an int"):
            WordErrorRate(separator=separator)

    @pytest.mark.parametrize(("separator", "pad_value"), [(-3, -1), (0, 0)])
    def test_separator_must_not_be_padding(self, separator, pad_value):
        """A separator that would read as padding is refused."""
        with pytest.raises(
            ValueError, match="'separator' must be a label value that is not padding"
        ):
            WordErrorRate(separator=separator, pad_value=pad_value)

    def test_rank_error(self):
        """A rank-1 label batch is refused with the shape received."""
        with pytest.raises(ValueError, match=r"'y_true' must be \(batch, length\)"):
            WordErrorRate(separator=0).update_state(np.zeros((4,)), np.zeros((4, 2)))


def test_exported():
    """The metrics and edit_distance are public in serializable.ctc."""
    for name in ("CharacterErrorRate", "WordErrorRate", "edit_distance"):
        assert name in serializable.ctc.__all__
    assert sorted(serializable.ctc.__all__) == serializable.ctc.__all__


class TestScale:
    """Edit distance in linear memory, with a NumPy fast path; jiwer's CER."""

    def test_numpy_path_matches_reference_past_one_word(self, rng):
        """Rows longer than 64 labels (several bit-parallel words) are exact too."""
        truth = rng.integers(0, 3, size=(40, 150))
        hyp = rng.integers(0, 3, size=(40, 140))
        n = rng.integers(0, 151, size=40)
        m = rng.integers(0, 141, size=40)
        truth[np.arange(150)[None, :] >= n[:, None]] = -1
        hyp[np.arange(140)[None, :] >= m[:, None]] = -1
        got = _ctc_metrics.levenshtein_numpy(truth, hyp, n, -1)
        expected = [
            levenshtein(unpad(a), unpad(b)) for a, b in zip(truth, hyp, strict=True)
        ]
        assert got.tolist() == expected

    def test_eager_and_symbolic_paths_agree(self, rng):
        """The NumPy path (eager) and the keras.ops path (symbolic) give the same distances."""
        truth = rng.integers(-1, 4, size=(16, 70))
        hyp = rng.integers(-1, 4, size=(16, 66))
        eager = _ctc_metrics._edit_distance(truth, hyp, 3, False, "t")
        arrays = [keras.ops.convert_to_tensor(v) for v in (truth, hyp)]
        n = _ctc_metrics._sequence_lengths(arrays[0], 3)
        m = _ctc_metrics._sequence_lengths(arrays[1], 3)
        symbolic = _ctc_metrics._levenshtein(*arrays, n, m)
        assert np.asarray(eager).tolist() == np.asarray(symbolic).tolist()

    def test_memory_is_linear(self):
        """1,000 pairs padded to 500 labels: under 200 MB extra (the old code: 8.9 GB).

        The old anti-diagonal code built a B*L*(L+T) array from the padded
        widths whatever the lengths; the hypotheses hold 60 real labels here
        only to keep the test fast (the loop runs once per hypothesis label,
        and memory does not grow with it).
        """
        import tracemalloc

        rng = np.random.default_rng(0)
        truth = rng.integers(0, 30, size=(1000, 500)).astype("int32")
        hyp = rng.integers(0, 30, size=(1000, 500)).astype("int32")
        hyp[:, 60:] = -1
        tracemalloc.start()
        try:
            distance = _ctc_metrics.levenshtein_numpy(
                truth, hyp, np.full(1000, 500), -1
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 200e6
        assert distance[:3].tolist() == [
            levenshtein(unpad(a), unpad(b))
            for a, b in zip(truth[:3], hyp[:3], strict=True)
        ]

    def test_strip(self):
        """strip removes the labels from both ends of both sequences, like str.strip."""
        cer = CharacterErrorRate()
        cer.update_state(np.array([[0, 1, -1]]), np.array([[1, -1, -1]]))
        assert float(cer.result()) == 0.5  # " a" vs "a": the space counts
        for strip in (0, [0], [0, 5]):
            cer = CharacterErrorRate(strip=strip)
            cer.update_state(
                np.array([[0, 0, 1, 0, 2, 0], [0, 0, 0, -1, -1, -1]]),
                np.array([[1, 0, 2, -1, -1, -1], [0, 3, 0, -1, -1, -1]]),
            )
            # Row 1: "a b" vs "a b": 0; row 2: "" vs "3": 1 insertion; 3 labels.
            assert float(cer.result()) == pytest.approx(1 / 3)
        assert CharacterErrorRate(strip=[0, 5]).get_config()["strip"] == [0, 5]
        with pytest.raises(TypeError, match="'strip' must be an int"):
            CharacterErrorRate(strip=" ")

    def test_matches_jiwer(self):
        """strip=<space> reproduces jiwer.cer on 3,000 generated pairs, to float32's digits."""
        jiwer = pytest.importorskip("jiwer")
        rng = np.random.default_rng(1)
        alphabet = "ab c"
        chars = list(alphabet)
        refs, hyps = [], []
        for _ in range(3000):
            ref = "".join(rng.choice(chars, rng.integers(1, 12)))
            refs.append(ref if ref.strip() else "a" + ref)
            hyps.append("".join(rng.choice(chars, rng.integers(0, 12))))

        def encode(strings):
            rows = np.full((len(strings), 12), -1)
            for i, text in enumerate(strings):
                rows[i, : len(text)] = [alphabet.index(c) for c in text]
            return rows

        cer = CharacterErrorRate(strip=alphabet.index(" "))
        cer.update_state(encode(refs), encode(hyps))
        expected = jiwer.cer(refs, hyps)
        assert np.float32(cer.result()) == np.float32(expected)
        assert f"{float(cer.result()):.6f}" == f"{expected:.6f}"
        plain = CharacterErrorRate()
        plain.update_state(encode(refs), encode(hyps))
        assert np.float32(plain.result()) != np.float32(expected)
