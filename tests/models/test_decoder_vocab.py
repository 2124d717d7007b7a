"""The decoder restricted to its corpus vocabulary: building it, reading unknown words, fitting."""

from __future__ import annotations

import re

import pytest
import torch

from p2l3d_core.models.config import DEFAULT_TEXT_MODEL, DecoderConfig
from p2l3d_core.models.decoder import (
    CAPTION_PROMPT,
    PrefixDecoder,
    RepeatedNgrams,
    corpus_vocab,
    length_groups,
    question_prompt,
)
from p2l3d_core.models.encoders import resolve_pretrained

EMBED = 32
QUESTION = "Which hand is further forward?"
TEXTS = ["the person is kneeling", "the person is standing", "left", "right", QUESTION]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_pretrained(DEFAULT_TEXT_MODEL))


@pytest.fixture(scope="module")
def vocab(tokenizer) -> tuple[int, ...]:
    return corpus_vocab(tokenizer, TEXTS)


def _decoder(tokenizer, vocab, seed: int = 0) -> PrefixDecoder:
    torch.manual_seed(seed)
    cfg = DecoderConfig(num_layers=1, hidden_size=32, num_heads=2, prefix_tokens=2, max_length=32,
                        vocab=vocab)
    return PrefixDecoder(cfg, EMBED, tokenizer)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_corpus_vocab_covers_texts_prompts_and_specials(tokenizer, vocab):
    assert list(vocab) == sorted(set(vocab))
    assert all(isinstance(i, int) for i in vocab)
    specials = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                tokenizer.unk_token_id}
    assert specials <= set(vocab)
    used = {i for t in TEXTS + [CAPTION_PROMPT, question_prompt("")] for i in _ids(tokenizer, t)}
    assert set(vocab) == used | specials  # nothing else
    assert len(vocab) < 40 < len(tokenizer)
    # duplicates in the corpus change nothing; a new word adds its tokens
    assert corpus_vocab(tokenizer, TEXTS * 3) == vocab
    bigger = corpus_vocab(tokenizer, TEXTS + ["zebra"])
    assert set(bigger) - set(vocab) == set(_ids(tokenizer, "zebra"))


def test_corpus_vocab_of_an_empty_corpus_is_prompts_and_specials(tokenizer):
    vocab = corpus_vocab(tokenizer, [])
    assert list(vocab) == sorted(set(vocab))
    assert set(_ids(tokenizer, CAPTION_PROMPT)) <= set(vocab)
    assert set(_ids(tokenizer, "question: answer:")) <= set(vocab)
    assert tokenizer.unk_token_id in vocab


def test_embedding_and_output_have_one_row_per_vocab_token(tokenizer, vocab):
    dec = _decoder(tokenizer, vocab)
    assert dec.lm.get_input_embeddings().weight.shape == (len(vocab), 32)
    assert dec.lm.get_output_embeddings().weight.shape[0] == len(vocab)
    assert dec.lm.config.vocab_size == len(vocab)


def test_a_pretrained_decoder_refuses_a_vocab(tokenizer, vocab):
    cfg = DecoderConfig(pretrained="/nonexistent/gpt2", vocab=vocab)
    with pytest.raises(ValueError, match="vocab"):
        PrefixDecoder(cfg, EMBED, tokenizer)


def test_words_outside_the_vocab_read_as_unk(tokenizer, vocab):
    dec = _decoder(tokenizer, vocab).eval()
    for word in ("zebra", "banana", "apple"):
        (token,) = _ids(tokenizer, word)
        assert token not in vocab
    emb = torch.randn(2, EMBED)
    prompts = [CAPTION_PROMPT, question_prompt("Is the zebra eating?")]

    def score(target: str) -> torch.Tensor:
        return dec.score(emb, prompts, [target, target])

    # two unknown words are the same [UNK]: identical scores, in the prompt as in the target
    assert torch.equal(score("zebra"), score("banana"))
    assert torch.equal(score("the zebra"), score("the apple"))
    assert torch.equal(dec.score(emb, [question_prompt("Is the banana eating?")] * 2, ["left"] * 2),
                       dec.score(emb, [question_prompt("Is the zebra eating?")] * 2, ["left"] * 2))
    # ... while words of the vocabulary are told apart
    assert not torch.equal(score("left"), score("right"))
    assert not torch.equal(score("zebra"), score("left"))


def _segments(word: str, pieces: set[str], continuations: set[str]) -> bool:
    """Can ``word`` be written as one vocab token followed by ``##`` continuation tokens?"""
    def rest(s: str) -> bool:
        return s == "" or any(s.startswith(c) and rest(s[len(c):]) for c in continuations)

    return any(word.startswith(p) and rest(word[len(p):]) for p in pieces)


def test_generated_text_only_uses_vocab_tokens(tokenizer, vocab):
    dec = _decoder(tokenizer, vocab, seed=3).eval()
    tokens = [t for t in tokenizer.convert_ids_to_tokens(list(vocab))
              if t not in tokenizer.all_special_tokens]
    continuations = {t[2:] for t in tokens if t.startswith("##")}
    pieces = set(tokens) | continuations
    torch.manual_seed(1)
    emb = torch.randn(6, EMBED) * 3
    prompts = [CAPTION_PROMPT] * 3 + [question_prompt("zebra")] * 3
    out = dec.generate(emb, prompts, max_new_tokens=12)
    # (decoding writes punctuation against the word before it: "right?")
    words = [w for text in out for w in re.findall(r"\w+|[^\w\s]", text)]
    assert words  # an untrained decoder babbles
    for w in words:
        assert _segments(w, pieces, continuations), (w, out)
    assert not any("[UNK]" in text or "[PAD]" in text for text in out)


def test_a_few_steps_fit_targets_and_rank_the_true_answer_first(tokenizer, vocab):
    dec = _decoder(tokenizer, vocab)
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(4, EMBED), dim=-1)
    prompts = [question_prompt(QUESTION), question_prompt(QUESTION), CAPTION_PROMPT, CAPTION_PROMPT]
    targets = ["left", "right", "the person is kneeling", "the person is standing"]
    opt = torch.optim.AdamW(dec.parameters(), lr=1e-2)
    first = None
    for _ in range(100):
        loss = dec(emb, prompts, targets)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 5
    dec.eval()
    assert dec.generate(emb, prompts, max_new_tokens=8) == targets
    candidates = {0: ("left", "right"), 1: ("left", "right"),
                  2: ("the person is kneeling", "the person is standing"),
                  3: ("the person is kneeling", "the person is standing")}
    for i, target in enumerate(targets):
        cands = candidates[i]
        scores = dec.score(emb[i:i + 1].expand(len(cands), -1), [prompts[i]] * len(cands),
                           list(cands))
        assert scores.shape == (len(cands),)
        assert torch.isfinite(scores).all() and (scores <= 0).all()
        assert cands[int(scores.argmax())] == target, (i, scores)


def test_score_is_one_finite_non_positive_value_per_sample(tokenizer, vocab):
    dec = _decoder(tokenizer, vocab).eval()
    emb = torch.randn(3, EMBED)
    scores = dec.score(emb, [CAPTION_PROMPT, question_prompt(QUESTION), CAPTION_PROMPT],
                       ["the person is kneeling", "left", "zebra"])
    assert scores.shape == (3,)
    assert torch.isfinite(scores).all() and (scores <= 0).all()
    # each sample is scored on its own: the batch does not change a row's score
    alone = dec.score(emb[1:2], [question_prompt(QUESTION)], ["left"])
    assert torch.allclose(alone, scores[1:2], atol=1e-5)
    with pytest.raises(ValueError, match="one of each per sample"):
        dec.score(emb, [CAPTION_PROMPT], ["left"])


def _greedy_without_cache(dec: PrefixDecoder, emb: torch.Tensor, prompt: str,
                          steps: int) -> list[int]:
    """Reference: one prompt, no padding, the whole sequence recomputed for every token."""
    ids = torch.tensor([[dec.bos_id] + dec._ids(prompt)])
    out: list[int] = []
    for _ in range(steps):
        embeds = torch.cat([dec._prefix(emb), dec.lm.get_input_embeddings()(ids)], dim=1)
        nxt = int(dec.lm(inputs_embeds=embeds).logits[0, -1].argmax())
        if nxt == dec.eos_id:
            break
        out.append(dec._global[nxt])
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    return out


def test_cached_batched_generation_equals_recomputing_each_prompt_alone(tokenizer, vocab):
    words = ["person", "standing", "kneeling", "left", "right", "hand", "foot", "raised", "bent",
             "straight", "forward", "behind", "front", "torso", "head", "shoulder", "knee",
             "elbow", "apart", "together", "leaning", "upright"]
    dec = _decoder(tokenizer, corpus_vocab(tokenizer, words), seed=5).eval()
    torch.manual_seed(2)
    with torch.no_grad():  # large random weights: the next token depends on all the context
        for p in dec.parameters():
            p.normal_(0.0, 1.0)
    emb = torch.randn(3, EMBED)
    prompts = [CAPTION_PROMPT, question_prompt(QUESTION), question_prompt("left")]  # 3 lengths
    got = dec.generate(emb, prompts, max_new_tokens=10, no_repeat_ngram=None)  # plain greedy
    with torch.no_grad():
        want = [tokenizer.decode(_greedy_without_cache(dec, emb[i:i + 1], p, 10),
                                 skip_special_tokens=True).strip() for i, p in enumerate(prompts)]
    assert got == want and any(got)


def test_length_groups_split_short_from_long_only_where_it_saves_padding():
    assert length_groups([3, 30, 4, 31, 5]) == [[0, 2, 4], [1, 3]]
    assert length_groups([10, 11, 12, 12]) == [[0, 1, 2, 3]]  # too little padding to save
    assert length_groups([7]) == [[0]]
    assert length_groups([]) == []


def test_loss_over_length_groups_equals_one_padded_pass_values_and_gradients(tokenizer, vocab):
    """A batch mixing answers and captions runs as two passes; the mean over every target
    token, and its gradients, must equal the single right-padded pass's."""
    decoder = _decoder(tokenizer, vocab).eval()  # no dropout: both runs see the same network
    prompts = [question_prompt(QUESTION), CAPTION_PROMPT, question_prompt(QUESTION), CAPTION_PROMPT]
    targets = ["left", " ".join(["the person is kneeling", "the person is standing"] * 4),
               "right", " ".join(["the person is standing"] * 6)]
    embedding = torch.randn(4, EMBED, requires_grad=True)
    seqs, _ = decoder._sequences(embedding, prompts, targets)
    assert len(length_groups([len(s) for s in seqs])) == 2

    grouped = decoder(embedding, prompts, targets)
    (grad_grouped,) = torch.autograd.grad(grouped, embedding)
    logits, labels, _ = decoder._target_logits(embedding, prompts, targets)
    one_pass = torch.nn.functional.cross_entropy(logits, labels)
    (grad_one,) = torch.autograd.grad(one_pass, embedding)
    torch.testing.assert_close(grouped, one_pass, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_grouped, grad_one, atol=1e-6, rtol=1e-4)


def test_repeated_ngrams_bans_exactly_the_tokens_that_would_repeat_an_ngram():
    rule, text = RepeatedNgrams(3), []
    for t in [7, 8, 9, 7, 8]:
        assert rule.banned(text) == []
        text.append(t)
        rule.add(text)
    assert rule.banned(text) == [9]  # "7 8" was followed by 9 once: not again
    text += [5]
    rule.add(text)
    text += [7, 8]
    rule.add(text[:-1])
    rule.add(text)
    assert rule.banned(text) == [5, 9]


def _looping(decoder: PrefixDecoder, words: list[int], cycle: list[int]):
    """``_next_logits`` of a decoder stuck in a loop: it prefers ``cycle``'s tokens in turn,
    then ``words`` in their order, every other token (end of text included) far below, so only
    max_new_tokens ends the text."""
    calls = {"n": 0}

    def next_logits(embeds, mask, positions, past, lean):
        step = calls["n"]
        calls["n"] += 1
        logits = torch.full((embeds.shape[0], decoder.lm.config.vocab_size), -1e4)
        logits[:, words] = -torch.arange(len(words), dtype=torch.float32)
        logits[:, cycle[step % len(cycle)]] = 100.0
        return logits, past

    return next_logits


def test_generation_never_repeats_a_trigram_unless_told_to(tokenizer, vocab, monkeypatch):
    dec = _decoder(tokenizer, vocab).eval()
    words = [i for i, g in enumerate(dec._global)  # whole words: decoded text reads back the same
             if tokenizer.convert_ids_to_tokens(g).isalpha()]
    cycle = words[:3]

    def written(**kw) -> list[int]:
        monkeypatch.setattr(dec, "_next_logits", _looping(dec, words, cycle))
        text = dec.generate(torch.zeros(1, EMBED), [CAPTION_PROMPT], max_new_tokens=12, **kw)[0]
        return [dec._local[t] for t in tokenizer(text, add_special_tokens=False)["input_ids"]]

    looped = written(no_repeat_ngram=None)
    assert looped == (cycle * 4)[:12]
    kept = written()
    trigrams = [tuple(kept[i:i + 3]) for i in range(len(kept) - 2)]
    assert len(kept) == 12 and len(trigrams) == len(set(trigrams)), kept
    assert kept[:3] == cycle  # the loop's first pass is written as it comes
    with pytest.raises(ValueError, match="no_repeat_ngram must be >= 1"):
        dec.generate(torch.zeros(1, EMBED), [CAPTION_PROMPT], no_repeat_ngram=0)
