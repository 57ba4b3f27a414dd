"""The CRF functions against brute-force enumeration of every tag sequence."""

import json

import numpy as np
import pytest
import tensorflow as tf

from neuroner_tl import crf

from conftest import brute_force, enumerated_probabilities, random_case


CASES = [(seed, b) for seed in range(6) for b in (False, True)]


@pytest.mark.parametrize("seed,boundaries", CASES)
def test_log_norm_is_logsumexp_of_all_sequence_scores(seed, boundaries):
    inputs, transitions, lengths, start, end = random_case(seed, boundaries=boundaries)
    log_norm = crf.crf_log_norm(inputs, lengths, transitions, start, end).numpy()
    for b, length in enumerate(lengths):
        scores = list(brute_force(inputs[b], length, transitions, start, end).values())
        expected = np.logaddexp.reduce(scores) if length else 0.0
        assert log_norm[b] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("seed,boundaries", CASES)
def test_sequence_score_matches_enumeration_and_likelihoods_sum_to_one(seed, boundaries):
    inputs, transitions, lengths, start, end = random_case(seed, batch=1, time=3, boundaries=boundaries)
    length = int(lengths[0])
    scores = brute_force(inputs[0], length, transitions, start, end)
    likelihoods = []
    for sequence, expected in scores.items():
        tags = np.array([list(sequence) + [0] * (3 - length)], dtype=np.int32)
        got = crf.crf_sequence_score(inputs, tags, lengths, transitions, start, end).numpy()[0]
        assert got == pytest.approx(expected, abs=1e-4)
        log_likelihood, _ = crf.crf_log_likelihood(inputs, tags, lengths, transitions, start, end)
        likelihoods.append(log_likelihood.numpy()[0])
    assert np.logaddexp.reduce(likelihoods) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("seed,boundaries", CASES)
def test_viterbi_finds_the_best_sequence(seed, boundaries):
    inputs, transitions, lengths, start, end = random_case(seed, boundaries=boundaries)
    tags, best = crf.crf_decode(inputs, transitions, lengths, start, end)
    for b, length in enumerate(lengths):
        scores = brute_force(inputs[b], length, transitions, start, end)
        best_sequence = max(scores, key=scores.get)
        assert tuple(tags.numpy()[b, :length]) == best_sequence
        assert np.all(tags.numpy()[b, length:] == 0), "padding decodes to 0"
        assert best.numpy()[b] == pytest.approx(scores[best_sequence] if length else 0.0, abs=1e-4)


def test_length_zero_and_one_sequences():
    inputs = np.random.default_rng(1).normal(size=(2, 1, 4)).astype(np.float32)
    transitions = np.zeros((4, 4), np.float32)
    lengths = np.array([1, 0], np.int32)
    tags, best = crf.crf_decode(inputs, transitions, lengths)
    assert tags.numpy()[0, 0] == np.argmax(inputs[0, 0])
    assert best.numpy()[1] == 0.0
    log_norm = crf.crf_log_norm(inputs, lengths, transitions).numpy()
    assert log_norm[0] == pytest.approx(np.logaddexp.reduce(inputs[0, 0]), abs=1e-5)
    assert log_norm[1] == 0.0


def test_functions_inside_tf_function_with_unknown_shapes_and_time_one():
    spec = [tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, None], tf.float32)]

    @tf.function(input_signature=spec)
    def decode_and_norm(inputs, lengths, transitions):
        tags, best = crf.crf_decode(inputs, transitions, lengths)
        return tags, best, crf.crf_log_norm(inputs, lengths, transitions)

    for time in (1, 2, 5):
        inputs, transitions, lengths, _, _ = random_case(time, time=time, boundaries=False)
        tags, best, log_norm = decode_and_norm(inputs, lengths, transitions)
        eager_tags, eager_best = crf.crf_decode(inputs, transitions, lengths)
        np.testing.assert_array_equal(tags.numpy(), eager_tags.numpy())
        np.testing.assert_allclose(log_norm.numpy(), crf.crf_log_norm(inputs, lengths, transitions).numpy(), rtol=1e-5)


def test_numpy_viterbi_agrees_with_crf_decode():
    inputs, transitions, _, _, _ = random_case(3, batch=1, time=6, boundaries=False)
    sequence, score = crf.viterbi_decode(inputs[0], transitions)
    tags, best = crf.crf_decode(inputs, transitions, np.array([6], np.int32))
    assert sequence == tags.numpy()[0].tolist()
    assert score == pytest.approx(best.numpy()[0], abs=1e-4)


def test_gradient_of_negative_log_likelihood_is_finite_and_nonzero():
    inputs, transitions, lengths, start, end = random_case(0)
    variable = tf.Variable(transitions)
    tags = np.zeros(inputs.shape[:2], np.int32)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(crf.crf_log_likelihood(inputs, tags, lengths, variable, start, end)[0])
    gradient = tape.gradient(loss, variable).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


def test_layer_slices_the_c_plus_2_matrix_and_round_trips_its_config():
    allowed = np.ones((5, 5), bool)
    allowed[2, 2] = allowed[3, 2] = False  # tag 2 never follows itself, never starts: the best moves below
    rules = {"allowed_transitions": allowed, "continues": np.eye(3, dtype=bool), "is_entity": [False, True, True]}
    layer = crf.CRF(3, name="crf", **rules)
    layer.build((None, None, 3))
    assert tuple(layer.transitions.shape) == (5, 5)
    matrix = np.arange(25, dtype=np.float32).reshape(5, 5)
    layer.transitions.assign(matrix)
    np.testing.assert_array_equal(layer.label_transitions.numpy(), matrix[:3, :3])
    np.testing.assert_array_equal(layer.start_transitions.numpy(), matrix[3, :3])
    np.testing.assert_array_equal(layer.end_transitions.numpy(), matrix[:3, 4])
    config = json.loads(json.dumps(layer.get_config()))  # as a saved model's config holds it
    clone = crf.CRF.from_config(config)
    assert clone.num_tags == 3 and clone.name == "crf"
    for name, value in rules.items():  # the constraint and the span rules are saved with the layer
        np.testing.assert_array_equal(getattr(clone, name), np.asarray(value, bool))
    inputs, _, lengths, _, _ = random_case(2, tags=3)
    expected = crf.crf_decode(inputs, matrix[:3, :3], lengths, matrix[3, :3], matrix[:3, 4])[0]
    np.testing.assert_array_equal(layer.decode(inputs, lengths)[0].numpy(), expected.numpy())
    clone.build((None, None, 3))
    clone.transitions.assign(matrix)
    constrained = clone.decode(inputs, lengths, constrained=True)[0].numpy()
    for row, length in enumerate(lengths):
        steps = [3, *constrained[row, :length]]
        assert all(allowed[a, b] for a, b in zip(steps, steps[1:]))
    assert not np.array_equal(constrained, expected.numpy())  # the best path breaks the constraint
    with pytest.raises(ValueError, match="allowed_transitions must have shape"):
        crf.CRF(3, allowed_transitions=np.ones((3, 3), bool))


@pytest.mark.parametrize("seed,boundaries", CASES)
def test_marginals_match_enumeration(seed, boundaries):
    inputs, transitions, lengths, start, end = random_case(seed, boundaries=boundaries)
    log_marginals = tf.function(crf.crf_log_marginals)(inputs, lengths, transitions, start, end).numpy()
    for b, length in enumerate(lengths):
        scores = brute_force(inputs[b], length, transitions, start, end)
        log_z = np.logaddexp.reduce(list(scores.values())) if length else 0.0
        expected = np.zeros(inputs.shape[1:])
        for sequence, score in scores.items():
            for t, tag in enumerate(sequence):
                expected[t, tag] += np.exp(score - log_z)
        assert np.exp(log_marginals[b, :length]) == pytest.approx(expected[:length], abs=1e-4)
        assert np.all(log_marginals[b, length:] == 0.0)  # padding


def test_marginals_are_the_gradient_of_the_log_norm():
    inputs, transitions, lengths, start, end = random_case(11, batch=3, time=6, tags=4)
    inputs = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        log_norm = tf.reduce_sum(crf.crf_log_norm(inputs, lengths, transitions, start, end))
    gradient = tape.gradient(log_norm, inputs).numpy()
    marginals = np.exp(crf.crf_log_marginals(inputs, lengths, transitions, start, end).numpy())
    mask = np.arange(6)[None, :] < lengths[:, None]
    assert marginals[mask] == pytest.approx(gradient[mask], abs=1e-5)


@pytest.mark.parametrize("seed,boundaries", CASES)
def test_constrained_log_norm_sums_only_allowed_sequences(seed, boundaries):
    inputs, transitions, lengths, start, end = random_case(seed, boundaries=boundaries)
    rng = np.random.default_rng(100 + seed)
    allowed = rng.random(inputs.shape) < 0.6
    allowed[..., 0] |= ~allowed.any(axis=-1)  # at least one tag per position
    got = crf.crf_constrained_log_norm(inputs, allowed, lengths, transitions, start, end).numpy()
    for b, length in enumerate(lengths):
        scores = [score for sequence, score in brute_force(inputs[b], length, transitions, start, end).items()
                  if all(allowed[b, t, tag] for t, tag in enumerate(sequence))]
        expected = np.logaddexp.reduce(scores) if length else 0.0
        assert got[b] == pytest.approx(expected, abs=1e-3)


def test_constrained_log_norm_with_one_tag_per_position_is_the_sequence_score():
    inputs, transitions, lengths, start, end = random_case(3, batch=4, time=5, tags=4)
    tags = np.random.default_rng(3).integers(0, 4, size=(4, 5)).astype(np.int32)
    one_hot = np.eye(4, dtype=bool)[tags]
    got = crf.crf_constrained_log_norm(inputs, one_hot, lengths, transitions, start, end).numpy()
    expected = crf.crf_sequence_score(inputs, tags, lengths, transitions, start, end).numpy()
    assert got == pytest.approx(expected, abs=1e-3)


# confidences and constrained decoding ----------------------------------------------------------
SCHEME_LABELS = [("IOB2", ["O", "B-A", "I-A", "B-B", "I-B"]), ("BIOES", ["O", "B-A", "I-A", "E-A", "S-A"]),
                 ("IO", ["O", "A", "B"]), ("IOB1", ["O", "B-A", "I-A", "I-B"])]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scheme,labels", SCHEME_LABELS)
def test_token_and_span_confidences_match_enumeration(scheme, labels, seed):
    """A token's confidence is the marginal of its tag; an entity's is the probability, summed over
    every sequence, that its tokens carry exactly its tags and the token after it does not continue it
    (entities as ``tags.spans`` reads them), whatever the tags (valid or not) and the padding."""
    from neuroner_tl import tags as tagging

    rng = np.random.default_rng(seed)
    count = len(labels)
    inputs, transitions, lengths, start, end = random_case(seed, batch=4, time=4, tags=count)
    tag_ids = rng.integers(0, count, size=lengths.shape + (4,)).astype(np.int32)
    continues = tagging.span_continuation(labels)
    token, span = crf.crf_confidences(inputs, tag_ids, lengths, transitions, continues,
                                      np.array([label != "O" for label in labels]), start, end)
    token, span = token.numpy(), span.numpy()
    for b, length in enumerate(lengths):
        assert not token[b, length:].any() and not span[b, length:].any()
        if length == 0:
            continue
        sequences, probabilities = enumerated_probabilities(inputs[b], length, transitions, start, end)
        path = tag_ids[b, :length]
        for t in range(length):
            marginal = sum(p for s, p in zip(sequences, probabilities) if s[t] == path[t])
            assert token[b, t] == pytest.approx(marginal, abs=1e-5)
        in_entity = np.zeros(length, bool)
        for entity in tagging.spans([labels[i] for i in path]):
            def inside(sequence):
                return (all(sequence[t] == path[t] for t in range(entity.start, entity.end))
                        and not (entity.end < length and continues[sequence[entity.end - 1], sequence[entity.end]]))

            expected = sum(p for s, p in zip(sequences, probabilities) if inside(s))
            np.testing.assert_allclose(span[b, entity.start:entity.end], expected, atol=1e-5)
            in_entity[entity.start:entity.end] = True
        np.testing.assert_allclose(span[b, :length][~in_entity], token[b, :length][~in_entity], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scheme,labels", SCHEME_LABELS)
def test_constrained_viterbi_and_marginals_keep_to_the_allowed_sequences(scheme, labels, seed):
    """With the scheme's mask, Viterbi finds the best sequence among the valid ones and the marginals
    and the log-norm sum over valid sequences only."""
    from neuroner_tl import tags as tagging

    count = len(labels)
    inputs, _, lengths, _, _ = random_case(seed, batch=4, time=4, tags=count)
    allowed = tagging.allowed_transitions(scheme, labels)
    layer = crf.CRF(count, allowed_transitions=allowed, name="crf")
    layer.build((None, None, count))
    layer.transitions.assign(np.random.default_rng(seed).normal(size=(count + 2, count + 2)).astype(np.float32))
    full = layer.transitions.numpy()
    moves, start, end = full[:count, :count], full[count, :count], full[:count, count + 1]
    decoded = layer.decode(inputs, lengths, constrained=True)[0].numpy()
    marginals = np.exp(layer.log_marginals(inputs, lengths, constrained=True).numpy())
    log_norm = layer.log_norm(inputs, lengths, constrained=True).numpy()

    def valid(sequence):
        steps = [count, *sequence, count + 1]
        return all(allowed[a, b] for a, b in zip(steps, steps[1:]))

    for b, length in enumerate(lengths):
        if length == 0:
            continue
        scores = {s: v for s, v in brute_force(inputs[b], length, moves, start, end).items() if valid(s)}
        best = max(scores, key=scores.get)
        assert tuple(decoded[b, :length]) == best
        values = np.array(list(scores.values()))
        assert log_norm[b] == pytest.approx(np.logaddexp.reduce(values), abs=1e-4)
        probabilities = np.exp(values - np.logaddexp.reduce(values))
        for t in range(length):
            for j in range(count):
                expected = sum(p for s, p in zip(scores, probabilities) if s[t] == j)
                assert marginals[b, t, j] == pytest.approx(expected, abs=1e-5)
