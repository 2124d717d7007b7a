"""Grammar-constrained caption decoding: whatever the decoder's weights, every clause it writes
is a template's clause (a claim the rules can check), none twice, and captions end whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p2l3d_core.evaluation.claims import caption_claims
from p2l3d_core.language import describe_batch
from p2l3d_core.language.grammar import action_units, clause_table, unit_answers
from p2l3d_core.models.config import DEFAULT_TEXT_MODEL, DecoderConfig
from p2l3d_core.models.decoder import CAPTION_PROMPT, PrefixDecoder, corpus_vocab
from p2l3d_core.models.encoders import resolve_pretrained
from p2l3d_core.models.grammar import CaptionState
from p2l3d_core.poses.generator import generate_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EMBED = 32


@pytest.fixture(scope="module")
def captions() -> list[str]:
    """Rule captions of generator poses: the corpus a decoder's vocabulary is made from."""
    records = generate_records(0, 0, 200)
    texts = describe_batch(np.stack([r.joints_3d for r in records]), [r.action for r in records],
                           seeds=list(range(len(records))), num_captions=2)
    return [c for text in texts for c in text.captions]


@pytest.fixture(scope="module")
def decoder(captions) -> PrefixDecoder:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(DEFAULT_TEXT_MODEL))
    vocab = corpus_vocab(tokenizer, captions + list(clause_table()) + list(action_units()))
    torch.manual_seed(0)
    cfg = DecoderConfig(num_layers=1, hidden_size=32, num_heads=2, prefix_tokens=2,
                        max_length=96, vocab=vocab)
    return PrefixDecoder(cfg, EMBED, tokenizer)


def _walk(decoder: PrefixDecoder, text: str) -> CaptionState:
    """Feed ``text``'s tokens through the grammar, each checked to be allowed first."""
    grammar = decoder.caption_grammar
    state = CaptionState()
    for g in decoder.tokenizer(text.lower(), add_special_tokens=False)["input_ids"]:
        token = decoder._local[g]
        assert token in grammar.allowed(state), (text, decoder.tokenizer.decode([g]))
        state = grammar.advance(state, token)
    return state


def test_every_rule_caption_is_in_the_grammar_and_may_end(decoder, captions):
    grammar = decoder.caption_grammar
    for caption in captions[:150]:
        state = _walk(decoder, caption)
        assert grammar.eos in grammar.allowed(state), caption


def test_a_malformed_or_repeated_clause_and_an_early_end_are_not_allowed(decoder):
    grammar = decoder.caption_grammar
    with pytest.raises(AssertionError):  # "... than the right" is no template's clause
        _walk(decoder, "the right foot is further forward than the right.")
    state = _walk(decoder, "the left knee is straight and")
    assert grammar.eos not in grammar.allowed(state)
    with pytest.raises(AssertionError):  # a clause twice
        _walk(decoder, "the left knee is straight. the left knee is straight.")
    with pytest.raises(AssertionError):  # one posecode stated twice, here contradicting itself
        _walk(decoder, "the left knee is straight. the left knee is bent.")
    assert grammar.eos not in grammar.allowed(CaptionState())  # no empty caption


def test_an_untrained_decoder_within_the_grammar_writes_only_template_clauses(decoder):
    torch.manual_seed(1)
    texts = decoder.generate(torch.randn(12, EMBED), [CAPTION_PROMPT] * 12,
                             grammar=decoder.caption_grammar)
    free = decoder.generate(torch.randn(12, EMBED), [CAPTION_PROMPT] * 12)
    claims = [c for t in texts for c in caption_claims(t)]
    assert claims and not [c.text for c in claims if c.malformed], texts
    for text in texts:  # each posecode (and the action) stated once
        stated = [name for c in caption_claims(text) for name, _ in c.codes] + [
            "action" for c in caption_claims(text) if c.action]
        assert len(stated) == len(set(stated)), text
    # the same weights, free, write words in any order: the grammar is what makes them claims
    assert [c for t in free for c in caption_claims(t) if c.malformed]


def test_units_the_answer_head_does_not_back_are_closed(decoder):
    grammar = decoder.caption_grammar
    answers = sorted({a for expects in grammar.expects for _, ok in expects for a in ok})
    index = {a: i for i, a in enumerate(answers)}
    knee = [k for k, (_, q) in enumerate(grammar.guides)
            if q == "Is the left knee bent or straight?"]
    assert knee, grammar.guides
    probabilities = [[0.0] * len(answers) for _ in grammar.guides]
    probabilities[knee[0]][index["bent"]] = 0.85  # the head: bent, fairly sure
    probabilities[knee[0]][index["straight"]] = 0.15
    closed = grammar.closed_by(probabilities, index, threshold=0.8)
    state = CaptionState(closed=closed)
    _walk_with(decoder, "the left knee is bent.", state)
    with pytest.raises(AssertionError):
        _walk_with(decoder, "the left knee is straight.", state)
    unbacked = next(c for c, fixes in unit_answers().items() if not fixes and "arm" in c)
    _walk_with(decoder, unbacked + ".", CaptionState())  # a clause the grammar has, and
    with pytest.raises(AssertionError):  # nothing backs an upper arm's direction: closed
        _walk_with(decoder, unbacked + ".", state)
    assert "the left knee is bent" in _units_open(decoder, grammar.closed_by(
        probabilities, index, threshold=0.8))
    assert "the left knee is bent" not in _units_open(decoder, grammar.closed_by(
        probabilities, index, threshold=0.9))  # 0.85 is not enough at 0.9


def _walk_with(decoder: PrefixDecoder, text: str, state: CaptionState) -> CaptionState:
    grammar = decoder.caption_grammar
    for g in decoder.tokenizer(text, add_special_tokens=False)["input_ids"]:
        token = decoder._local[g]
        assert token in grammar.allowed(state), text
        state = grammar.advance(state, token)
    return state


def _units_open(decoder: PrefixDecoder, closed: frozenset[int]) -> set[str]:
    texts = list(clause_table()) + list(action_units())
    out = set()
    for text in texts:
        try:
            _walk_with(decoder, text + ".", CaptionState(closed=closed))
        except (AssertionError, KeyError):
            continue
        out.add(text)
    return out


def test_no_connector_where_no_clause_could_follow(decoder):
    """With every other clause closed, a clause ends its sentence: no dangling "and"."""
    grammar = decoder.caption_grammar
    knee = next(u for u, codes in enumerate(grammar.codes) if codes == {"l_knee"})
    everything_else = frozenset(range(len(grammar.codes))) - {knee}
    state = CaptionState(closed=everything_else)
    text = next(t for t in clause_table() if clause_table()[t] == (("l_knee", 0),))
    for g in decoder.tokenizer(text, add_special_tokens=False)["input_ids"]:
        state = grammar.advance(state, decoder._local[g])
    assert grammar.allowed(state) == [grammar.period]
