import io
import numpy as np
import pytest

from neuroner_tl import api
from neuroner_tl.config import Hyperparameters
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.tagger import build_tagger

SMALL = dict(token_embedding_dim=16, token_lstm_units=16, char_lstm_units=8, char_embedding_dim=8)


def test_tiny_model_learns(tiny_model):
    _, result = tiny_model
    history = result.tagger.history
    assert history[-1]["loss"] < history[0]["loss"] / 2
    assert result.dev_report.f1 > 30.0
    assert result.dev_report.f1 == pytest.approx(max(r["dev_f1"] for r in history), abs=1e-6), \
        "the best epoch's weights are kept"


def test_batch_size_one_trains_and_bioes_round_trips():
    corpus = generate_corpus("A", 24, seed=9)
    hp = Hyperparameters(batch_size=1, max_epochs=1, tag_scheme="BIOES", **SMALL)
    result = api.train(corpus, None, dev=generate_corpus("A", 8, seed=10), hp=hp, verbose=False)
    assert "S-Phone" in result.tagger.labels and "E-Person" in result.tagger.labels
    predicted = result.tagger.predict(corpus.sentences[:3])
    assert [len(p) for p in predicted] == [len(s) for s in corpus.sentences[:3]]


def flat_run(hp, corpus):
    """Train with a selection whose score never improves after the first epoch; the trainer."""
    from neuroner_tl.callbacks import DevScore
    from neuroner_tl.training import Trainer

    tagger = build_tagger(hp, corpus)
    trainer = Trainer(tagger, progress=api.Progress(False))
    trainer.fit(tagger.encode_corpus(corpus), selection=lambda _tagger: DevScore(50.0))
    return trainer, tagger


def test_early_stopping_stops_after_patience():
    hp = Hyperparameters(max_epochs=30, patience=2, patience_steps=0, **SMALL)
    trainer, tagger = flat_run(hp, generate_corpus("A", 40, seed=11))
    assert len(tagger.history) == 3
    assert trainer.best_epoch == 1


def test_patience_also_counts_optimizer_steps():
    """40 sentences in batches of 32 are 2 steps an epoch: 2 epochs of patience are only 4 steps,
    so with patience_steps=9 the run waits 5 epochs after its best."""
    hp = Hyperparameters(max_epochs=30, patience=2, patience_steps=9, **SMALL)
    trainer, tagger = flat_run(hp, generate_corpus("A", 40, seed=11))
    assert len(tagger.history) == 6
    assert trainer.best_epoch == 1


def test_same_seed_same_model():
    corpus = generate_corpus("A", 30, seed=13)
    dev = generate_corpus("A", 10, seed=14)
    hp = Hyperparameters(max_epochs=2, **SMALL)
    first = api.train(corpus, None, dev=dev, hp=hp, verbose=False).tagger.network.get_weights()
    second = api.train(corpus, None, dev=dev, hp=hp, verbose=False).tagger.network.get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def _adam_after_steps(optimizer_class, make_gradient, steps=4, clip=None):
    import keras
    import tensorflow as tf

    variable = keras.Variable(np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32))
    from neuroner_tl.optimizers import FusedAdam

    name = "element_clip" if optimizer_class is FusedAdam else "clipvalue"  # ours clips after the all-reduce
    optimizer = optimizer_class(learning_rate=0.01, **({name: clip} if clip else {}))
    optimizer.build([variable])
    rng = np.random.default_rng(1)

    @tf.function
    def apply(values, indices):
        optimizer.apply([make_gradient(values, indices)], [variable])

    for _ in range(steps):
        apply(rng.normal(size=(5, 3)).astype(np.float32), rng.choice(12, size=5, replace=False).astype(np.int32))
    return variable.numpy(), optimizer._velocities[0].numpy()


def _sparse(values, indices):
    import tensorflow as tf

    return tf.IndexedSlices(values, indices, tf.constant([12, 3]))


def _dense(values, indices):
    import tensorflow as tf

    return tf.convert_to_tensor(_sparse(values, indices))


@pytest.mark.parametrize("make_gradient", [_dense, _sparse])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_fused_adam_equals_keras_adam(make_gradient, clip):
    import keras

    from neuroner_tl.optimizers import FusedAdam

    expected = _adam_after_steps(keras.optimizers.Adam, make_gradient, clip=clip)
    actual = _adam_after_steps(FusedAdam, make_gradient, clip=clip)
    for mine, theirs in zip(actual, expected):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected[0], _adam_after_steps(FusedAdam, make_gradient, steps=0, clip=clip)[0])


def test_fused_adam_sums_repeated_rows_before_squaring():
    """A word twice in a batch: Adam's second moment is the square of the summed gradient (what a dense
    gradient gives); Keras 3's Adam squares each occurrence's slice instead."""
    import keras
    import tensorflow as tf

    from neuroner_tl.optimizers import FusedAdam

    def velocity(optimizer_class, gradient):
        variable = keras.Variable(np.zeros((3, 2), np.float32))
        optimizer = optimizer_class(learning_rate=0.1)
        optimizer.build([variable])
        optimizer.apply([gradient], [variable])
        return optimizer._velocities[0].numpy()[0]

    repeated = tf.IndexedSlices(tf.ones((2, 2)), tf.constant([0, 0]), tf.constant([3, 2]))
    summed = tf.convert_to_tensor(repeated)
    np.testing.assert_allclose(velocity(FusedAdam, repeated), velocity(keras.optimizers.Adam, summed), rtol=1e-4)
    assert velocity(FusedAdam, repeated)[0] == pytest.approx(0.001 * 2.0 ** 2, rel=1e-4)


def test_patience_does_not_count_while_the_selection_is_not_ready():
    """An update's score cannot judge a run before the target type is found at all: early
    stopping waits for that, so a slow start is not taken for a plateau."""
    from neuroner_tl.callbacks import DevScore
    from neuroner_tl.training import Trainer

    corpus = generate_corpus("A", 40, seed=11)
    hp = Hyperparameters(max_epochs=7, patience=1, patience_steps=0, **SMALL)
    tagger = build_tagger(hp, corpus)
    epochs = []

    def selection(_tagger):
        epochs.append(len(epochs) + 1)
        return DevScore(50.0, ready=len(epochs) >= 5)  # flat score, "ready" from epoch 5 on

    trainer = Trainer(tagger, progress=api.Progress(False))
    trainer.fit(tagger.encode_corpus(corpus), selection=selection)
    assert len(epochs) == 5 and trainer.best_epoch == 1


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_a_score_that_creeps_up_by_less_than_its_noise_does_not_keep_a_run_going(noise):
    """Patience counts from the last epoch whose score rose more than its noise above the one before
    that counted: rises of 0.1 an epoch keep a noiseless run going to max_epochs, and stop a run
    whose score moves by 1.0 by chance after ``patience`` epochs; the best epoch is the highest."""
    from neuroner_tl.callbacks import DevScore
    from neuroner_tl.training import Trainer

    corpus = generate_corpus("A", 40, seed=11)
    hp = Hyperparameters(max_epochs=9, patience=3, patience_steps=0, **SMALL)
    tagger = build_tagger(hp, corpus)
    epochs = []

    def selection(_tagger):
        epochs.append(len(epochs) + 1)
        return DevScore(50.0 + 0.1 * len(epochs), noise=noise)

    stream = io.StringIO()
    trainer = Trainer(tagger, progress=api.Progress(True, stream))
    trainer.fit(tagger.encode_corpus(corpus), selection=selection)
    lines = stream.getvalue().splitlines()
    assert len(epochs) == (9 if noise == 0 else 4) and trainer.best_epoch == len(epochs)
    said = [line for line in lines if line.startswith("stopping")]
    assert said and (("max_epochs (9) reached" in said[0]) if noise == 0 else
                     "not risen by more than its noise (1.00) above 50.10 (epoch 1) for 3 epochs" in said[0])


def test_training_goes_through_keras_fit_with_tensorboard_scalars(tiny_model):
    """The model folder's logs/ are Keras's TensorBoard callback's: the loss and, from the dev
    selection callback, the dev score of every epoch."""
    import tensorflow as tf

    folder, result = tiny_model
    events = sorted((folder / "logs" / "train").glob("events.out.tfevents.*"))
    assert events, "TensorBoard event files"
    scalars = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(event.step)
    epochs = len(result.tagger.history)
    assert {"epoch_loss", "epoch_dev_score", "epoch_sentences_per_second"} <= set(scalars), sorted(scalars)
    assert sorted(scalars["epoch_dev_score"]) == list(range(epochs))  # the epoch's logs, as every callback sees them



# behaviour that had no test before issue #20 --------------------------------------------------------------
TINY = dict(token_embedding_dim=8, token_lstm_units=8, char_embedding_dim=4, char_lstm_units=4, batch_size=8)


def write_vectors(path, words, dim, seed=0):
    """A word2vec text file with a vector for each of ``words``; {word: vector}."""
    rng = np.random.default_rng(seed)
    table = {word: rng.normal(size=dim).astype(np.float32) for word in words}
    path.write_text(f"{len(table)} {dim}\n" + "".join(f"{w} {' '.join(repr(float(x)) for x in v)}\n"
                                                      for w, v in table.items()))
    return table


def test_freeze_word_embeddings_keeps_the_vectors_as_loaded_and_trains_the_rest(tmp_path):
    from neuroner_tl.embeddings import load_vectors
    from neuroner_tl.model import weight_arrays
    from neuroner_tl.training import seed_everything

    corpus, dev = generate_corpus("A", 40, seed=15), generate_corpus("A", 10, seed=16)
    words = sorted({t for s in corpus.sentences for t in s.tokens if t.isalpha()})[:30]
    table = write_vectors(tmp_path / "vectors.vec", words, dim=8)
    hp = Hyperparameters(max_epochs=2, freeze_word_embeddings=True, learning_rate=0.01, **TINY)
    seed_everything(hp.seed)  # what api.train starts from
    start = weight_arrays(build_tagger(hp, corpus, [dev], load_vectors(tmp_path / "vectors.vec")).network)

    def train(freeze):
        tagger = api.train(corpus, None, dev=dev, hp=hp.replace(freeze_word_embeddings=freeze),
                           embeddings=tmp_path / "vectors.vec", verbose=False).tagger
        return tagger, weight_arrays(tagger.network)

    frozen, after = train(True)
    for word, vector in table.items():
        np.testing.assert_array_equal(after["word_embedding/embeddings"][frozen.words.id(word)], vector, err_msg=word)
    np.testing.assert_array_equal(after["word_embedding/embeddings"], start["word_embedding/embeddings"])
    assert not np.array_equal(after["crf/transitions"], start["crf/transitions"]), "the rest trains"
    assert frozen.network.word_embedding.trainable, "the layer is trainable again once training is over"
    trained, unfrozen = train(False)
    assert not np.array_equal(unfrozen["word_embedding/embeddings"], start["word_embedding/embeddings"])


def test_sgd_trains_with_each_element_of_the_gradient_clipped():
    """SGD (``optimizer="sgd"``), not only the diverging run of test_user_mistakes: a step is
    ``w - lr * clip(g)``, and training with it lowers the loss."""
    import keras
    import tensorflow as tf

    from neuroner_tl.optimizers import ClippedSGD, make_optimizer

    optimizer = make_optimizer("sgd", 0.5, 1.0)
    assert isinstance(optimizer, ClippedSGD) and optimizer.element_clip == 1.0
    variable = keras.Variable(np.array([1.0, 1.0, 1.0], np.float32))
    optimizer.build([variable])
    optimizer.apply([tf.constant([3.0, -0.2, -5.0])], [variable])
    np.testing.assert_allclose(variable.numpy(), [1.0 - 0.5 * 1.0, 1.0 + 0.5 * 0.2, 1.0 + 0.5 * 1.0], rtol=1e-6)
    corpus = generate_corpus("A", 40, seed=17)
    hp = Hyperparameters(optimizer="sgd", learning_rate=0.05, max_epochs=4, patience=4, **TINY)
    history = api.train(corpus, None, dev=generate_corpus("A", 10, seed=18), hp=hp, verbose=False).tagger.history
    losses = [r["loss"] for r in history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] * 0.8, losses


def test_singletons_become_unk_in_the_trainers_batches(monkeypatch):
    """NeuroNER's regularizer through ``api.train``: the words seen once in training (in the
    vocabulary with ``min_word_count=1``) are the trainer's singletons, and with probability 1 none
    of them reaches the network, with 0 all do."""
    from neuroner_tl import training
    from neuroner_tl.vocabulary import UNK_ID

    corpus = generate_corpus("A", 40, seed=19)
    seen = []
    original = training.replace_singletons

    def spy(words, singleton_ids, probability, rng):
        replaced = original(words, singleton_ids, probability, rng)
        seen.append((words.copy(), replaced.copy(), np.asarray(singleton_ids).copy(), probability))
        return replaced

    monkeypatch.setattr(training, "replace_singletons", spy)
    for probability in (1.0, 0.0):
        seen.clear()
        hp = Hyperparameters(max_epochs=1, min_word_count=1, singleton_unk_probability=probability, **TINY)
        tagger = api.train(corpus, None, dev=generate_corpus("A", 10, seed=20), hp=hp, verbose=False).tagger
        counts = {}
        for sentence in corpus.sentences:
            for token in sentence.tokens:
                counts[tagger.encoder.word_id(token)] = counts.get(tagger.encoder.word_id(token), 0) + 1
        singletons = sorted(tagger.singletons)
        assert singletons and all(counts.get(i) == 1 for i in singletons)
        assert len(seen) == -(-len(corpus) // hp.batch_size), "every batch goes through the replacement"
        for words, replaced, ids, used in seen:
            assert sorted(ids.tolist()) == singletons and used == probability
            hit = np.isin(words, singletons)
            if probability == 1.0:
                assert np.all(replaced[hit] == UNK_ID) and np.array_equal(replaced[~hit], words[~hit])
            else:
                assert np.array_equal(replaced, words)
        assert sum(np.isin(words, singletons).sum() for words, *_ in seen) > 0


def test_compute_loss_ignores_sample_weight(tiny_model, tiny_data):
    """``TrainingModel.compute_loss`` is the mean of the sentences' CRF losses whatever
    ``sample_weight`` Keras passes: the package never weights sentences."""
    from neuroner_tl.batching import pad
    from neuroner_tl.model import CHAR_INPUT, WORD_INPUT
    from neuroner_tl.training import TrainingModel

    tagger = tiny_model[1].tagger
    items = tagger.encode_corpus(api.load_corpus(tiny_data["dev"]))[:6]
    batch = pad(items, list(range(len(items))))
    inputs = {WORD_INPUT: batch.words, CHAR_INPUT: batch.chars}
    targets = batch.targets()
    model = TrainingModel(tagger.network)
    outputs = model(inputs, training=False)
    plain = float(model.compute_loss(inputs, targets, outputs, training=False))
    for weights in (np.zeros(len(items), np.float32), np.arange(len(items), dtype=np.float32)):
        assert float(model.compute_loss(inputs, targets, outputs, sample_weight=weights, training=False)) == plain
    first = float(model.compute_loss({k: v[:1] for k, v in inputs.items()}, {"labels": targets["labels"][:1]},
                                     model({k: v[:1] for k, v in inputs.items()}, training=False), training=False))
    assert first != plain, "the loss does depend on the sentences"


def test_training_leaves_the_network_as_it_found_it_but_for_its_weights(tiny_data):
    """Training wraps the network (``TrainingModel``) instead of setting an objective, anchors or
    ``trainable`` flags on it: after a run with L2-SP and a frozen layer the network has the public
    attributes, config and trainable weights it had before, and decodes as a fresh copy does."""
    from neuroner_tl.batching import pad
    from neuroner_tl.model import CHAR_INPUT, WORD_INPUT, NeuronerModel, assign_weights, weight_arrays
    from neuroner_tl.objectives import Objective
    from neuroner_tl.training import Trainer

    def public_state(network):
        return ({name for name in vars(network) if not name.startswith("_")}, network.get_config(),
                [v.path for v in network.trainable_variables])

    hp = Hyperparameters(max_epochs=1, token_embedding_dim=8, token_lstm_units=8, char_lstm_units=4,
                         char_embedding_dim=4, batch_size=8)
    train = api.load_corpus(tiny_data["train"])
    tagger = build_tagger(hp, train)
    network = tagger.network
    before = public_state(network)
    frozen_before = network.word_embedding.embeddings.numpy()
    Trainer(tagger, objective=Objective(l2sp_weight=0.1), frozen=("word_embedding",)).fit(tagger.encode_corpus(train))
    assert public_state(network) == before
    assert not any(hasattr(network, name) for name in ("objective", "anchors", "allowed_transitions", "span_rules"))
    np.testing.assert_array_equal(network.word_embedding.embeddings.numpy(), frozen_before)
    copy = NeuronerModel.from_config(network.get_config())
    assign_weights(copy, weight_arrays(network))
    items = tagger.encode_corpus(train)[:20]
    batch = pad(items, list(range(len(items))))
    inputs = {WORD_INPUT: batch.words, CHAR_INPUT: batch.chars}
    for constrained in (True, False):
        np.testing.assert_array_equal(network.decode(inputs, constrained=constrained)["tag_ids"].numpy(),
                                      copy.decode(inputs, constrained=constrained)["tag_ids"].numpy())


def test_the_private_keras_hooks_the_package_relies_on_still_exist():
    """Two private Keras hooks have no public counterpart (see ``training.TrainingModel`` and
    ``optimizers.FusedAdam``); overriding or reading one that a Keras release renamed would silently
    do nothing or fail mid-training, so this names the Keras version that broke them."""
    import inspect

    import keras
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    hook = getattr(TensorFlowTrainer, "_maybe_symbolic_build", None)
    assert hook is not None, f"Keras {keras.__version__} has no TensorFlowTrainer._maybe_symbolic_build"
    assert list(inspect.signature(hook).parameters) == ["self", "iterator", "data_batch"], keras.__version__
    adam = keras.optimizers.Adam()
    adam.build([keras.Variable(np.zeros(3, np.float32))])
    assert len(adam._momentums) == len(adam._velocities) == 1, keras.__version__
    assert adam._get_variable_index(adam._trainable_variables[0]) == 0, keras.__version__


def test_the_update_plot_never_calls_the_selection_score_dev_f1(tmp_path, monkeypatch):
    """An update's epochs are selected by a smoothed mix of target and retention F1: the plot shows
    the two F1s and names the mix for what it is; a training's plot keeps "dev F1"."""
    from matplotlib.figure import Figure

    from neuroner_tl.progress import plot_history

    labels = []
    original = Figure.savefig

    def record(figure, *args, **kwargs):
        labels.append([line.get_label() for axis in figure.axes for line in axis.get_lines()])
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    update = [{"epoch": e, "loss": 1.0 / e, "dev_f1": 50.0 + e, "dev_target_f1": 40.0 + e, "dev_retention_f1": 90.0}
              for e in (1, 2, 3)]
    plot_history(update, tmp_path / "update.png")
    plot_history([{k: v for k, v in r.items() if k in ("epoch", "loss", "dev_f1")} for r in update],
                 tmp_path / "training.png")
    assert "dev F1" not in labels[0] and "selection score (smoothed mix)" in labels[0]
    assert {"dev target F1 (gold)", "dev retention F1"} <= set(labels[0])
    assert "dev F1" in labels[1] and (tmp_path / "update.png").stat().st_size > 1000


def test_keras_predict_on_the_network_gives_the_taggers_constrained_tags(tiny_model, tiny_data):
    """README's direct use of the network: Keras's ``predict_on_batch`` decodes as the tagger does."""
    from neuroner_tl.batching import encode, inference_batches

    tagger = api.load_tagger(tiny_model[0])
    sentences = [s.tokens for s in api.load_corpus(tiny_data["test"]).sentences[:16]]
    batch = next(inference_batches(encode(sentences, tagger.encoder), batch_size=128))
    outputs = tagger.network.predict_on_batch(batch.inputs())
    assert set(outputs) == {"tag_ids", "scores"}
    expected = tagger.predict(sentences)
    for row, index in enumerate(batch.indices):
        assert [tagger.labels[i] for i in outputs["tag_ids"][row, :len(sentences[index])]] == expected[index]
