"""The update's promise on real data (CoNLL-2003 from ../shared/data): a source model that never
saw ORG learns it from sentences where only ORG is annotated, and keeps PER, LOC and MISC.
Slow (about two minutes on 2 cores); skipped with a reason when the data are absent."""

import pytest

from neuroner_tl import api, tags
from neuroner_tl.conll import Corpus, read_conll
from neuroner_tl.config import Hyperparameters

from conftest import shared_file

pytestmark = pytest.mark.slow


def relabel(corpus: Corpus, keep) -> Corpus:
    return Corpus([s.with_labels(tags.tags_from_spans([x for x in tags.spans(s.labels) if x.type in keep], len(s),
                                                      "IOB2")) for s in corpus.sentences], "IOB2")


def test_update_on_conll_learns_org_and_keeps_the_other_types():
    conll = read_conll(shared_file("conll2003/train.txt")).converted("IOB2")
    test = Corpus(read_conll(shared_file("conll2003/test.txt")).converted("IOB2").sentences[:800], "IOB2")
    old = {"PER", "LOC", "MISC"}
    source_train = relabel(Corpus(conll.sentences[:3000], "IOB2"), old)
    source_dev = relabel(Corpus(conll.sentences[3000:3400], "IOB2"), old)
    target = relabel(Corpus(conll.sentences[10000:10600], "IOB2"), {"ORG"})
    hp = Hyperparameters(token_embedding_dim=100, token_lstm_units=64, max_epochs=6, patience=6)
    source = api.train(source_train, None, dev=source_dev, hp=hp, verbose=False).tagger
    updated = api.update(source, target, ["ORG"], None, max_epochs=15, verbose=False).tagger

    before, after = source.evaluate(test)[0], updated.evaluate(test)[0]
    assert after.by_type["ORG"].f1 > 30.0, after.format_table()
    for kind in old:
        assert after.by_type[kind].f1 > before.by_type[kind].f1 - 3.0, (kind, before.format_table(), after.format_table())
    sentences = [s.tokens for s in test.sentences]
    found_before = [{x for x in tags.spans(t) if x.type in old} for t in source.predict(sentences, scheme="IOB2")]
    found_after = [set(tags.spans(t)) for t in updated.predict(sentences, scheme="IOB2")]
    kept = sum(len(b & a) for b, a in zip(found_before, found_after)) / sum(len(b) for b in found_before)
    assert kept > 0.85, f"the updated model finds only {kept:.0%} of what the source found"
