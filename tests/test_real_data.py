"""The update's promise on real data (CoNLL-2003 from ../shared/data): a source model that never
saw ORG learns it from sentences where only ORG is annotated, and keeps PER, LOC and MISC.
Slow (about two minutes on 2 cores); skipped with a reason when the data are absent."""

import pytest

from neuroner_tl import api, tags
from neuroner_tl.conll import read_conll
from neuroner_tl.corpus import Corpus
from neuroner_tl.config import Hyperparameters

from conftest import keep_types as relabel
from conftest import shared_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def without_org():
    """(a small source trained on 3,000 CoNLL-2003 sentences with ORG relabelled O, 600 target
    sentences with only ORG, 800 test sentences, the old types)."""
    conll = read_conll(shared_file("conll2003/train.txt")).converted("IOB2")
    test = Corpus(read_conll(shared_file("conll2003/test.txt")).converted("IOB2").sentences[:800], "IOB2")
    old = {"PER", "LOC", "MISC"}
    source_train = relabel(Corpus(conll.sentences[:3000], "IOB2"), old)
    source_dev = relabel(Corpus(conll.sentences[3000:3400], "IOB2"), old)
    target = relabel(Corpus(conll.sentences[10000:10600], "IOB2"), {"ORG"})
    hp = Hyperparameters(token_embedding_dim=100, token_lstm_units=64, max_epochs=6, patience=6)
    source = api.train(source_train, None, dev=source_dev, hp=hp, verbose=False).tagger
    return source, target, test, old


def old_type_figures(source, updated, test, old):
    """(mean F1 change of the old types, share of the old-type spans the source found correctly that
    the updated model still finds), with the two reports for messages."""
    before, after = source.evaluate(test)[0], updated.evaluate(test)[0]
    mean_change = sum(after.by_type[k].f1 - before.by_type[k].f1 for k in old) / len(old)
    sentences = [s.tokens for s in test.sentences]
    gold = [set(tags.spans(s.labels)) for s in test.sentences]
    right_before = [{x for x in tags.spans(t) if x.type in old} & g
                    for t, g in zip(source.predict(sentences, scheme="IOB2"), gold)]
    found_after = [set(tags.spans(t)) for t in updated.predict(sentences, scheme="IOB2")]
    kept = sum(len(b & a) for b, a in zip(right_before, found_after)) / sum(len(b) for b in right_before)
    return mean_change, kept, (before.format_table(), after.format_table())


def test_distill_on_conll_learns_org_and_keeps_the_other_types(without_org):
    source, target, test, old = without_org
    updated = api.update(source, target, ["ORG"], None, method="distill", max_epochs=15, verbose=False).tagger
    assert updated.evaluate(test)[0].by_type["ORG"].f1 > 30.0
    mean_change, kept, tables = old_type_figures(source, updated, test, old)
    # Measured over seeds 1-3 (this test runs seed 1) the old types' mean change is -3.4 (single runs
    # -3.1 to -3.7; the hand-written loop before Keras's fit: -3.7, runs -2.1 to -6.2); plain fine-tuning
    # loses about 78. The bound catches a broken update, not one unlucky batch order.
    assert mean_change > -5.0, tables
    # measured 0.89 with this small source trained for 6 epochs; plain fine-tuning keeps almost none
    assert kept > 0.85, f"the updated model finds only {kept:.0%} of the old-type spans the source found correctly"


def test_isolate_on_conll_learns_org_and_changes_old_types_only_where_org_wins(without_org):
    """The default for a new type: the old types' scores are the source's, so they lose only the
    tokens ORG now wins (measured: ORG 61.1, old types -0.58, against distill's 61.0 and -1.42)."""
    source, target, test, old = without_org
    result = api.update(source, target, ["ORG"], None, verbose=False)
    assert result.settings.method == "column"
    assert result.tagger.evaluate(test)[0].by_type["ORG"].f1 > 45.0
    mean_change, kept, tables = old_type_figures(source, result.tagger, test, old)
    assert mean_change > -1.5, tables
    # measured 0.93 (distill 0.89): an old-type span is lost only where ORG now wins one of its tokens
    assert kept > 0.9, f"the updated model finds only {kept:.0%} of the old-type spans the source found correctly"


def test_preserve_surgery_decodes_real_italian_text_exactly_like_the_source(tiny_model):
    """KIND's real Italian sentences (not the synthetic training data): preserve-mode surgery with new
    types, words and characters changes no prediction."""
    from neuroner_tl.surgery import ModelSurgeon

    source = tiny_model[1].tagger
    sentences = read_conll(shared_file("kind/evalita-2023/ADG_test.tsv")).sentences[:300]
    target = ModelSurgeon(source).operate(new_types=["Address2", "Email"], new_words=["Roma", "roma", "Camera"],
                                          new_chars=["ŧ"], init="preserve")
    assert target.predict(sentences) == source.predict(sentences)
