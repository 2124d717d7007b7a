"""Text decoder: a GPT-2-architecture causal LM that writes captions and answers from a pose
embedding, which enters as ``prefix_tokens`` learned prefix vectors (ClipCap style).

It shares the text encoder's WordPiece tokenizer, so one tokenizer ships with a model and
nothing is downloaded. A config may restrict the decoder to the token ids its corpus uses
(``DecoderConfig.vocab``, built by :func:`corpus_vocab`): others read as ``[UNK]``. Sequence:
``[CLS] prompt target [SEP]``; the loss covers the target and the closing ``[SEP]`` only.
Prompts: ``"caption:"`` for a description, ``"question: Q answer:"`` for an answer.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable

import torch
from torch import nn

from p2l3d_core.models import gpt2_step
from p2l3d_core.models.config import DecoderConfig
from p2l3d_core.models.grammar import CaptionGrammar, CaptionState

CAPTION_PROMPT = "caption:"


def question_prompt(question: str) -> str:
    return f"question: {question} answer:"


def corpus_vocab(tokenizer, texts: Iterable[str]) -> tuple[int, ...]:
    """The token ids ``texts`` and the prompts use, plus the special tokens, sorted."""
    ids = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
           tokenizer.unk_token_id}
    texts = list(dict.fromkeys(texts)) + [CAPTION_PROMPT, question_prompt("")]
    for start in range(0, len(texts), 4096):
        for row in tokenizer(texts[start:start + 4096], add_special_tokens=False)["input_ids"]:
            ids.update(row)
    return tuple(sorted(ids))


def length_groups(lengths: list[int], min_saving: float = 0.2) -> list[list[int]]:
    """Indices of ``lengths`` in one or two groups, split where padding each group to its own
    longest sequence saves the most padded positions (kept as one group unless that saves at
    least ``min_saving`` of them: a pass has a fixed cost too)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    ranked = [lengths[i] for i in order]
    n = len(ranked)
    one = n * ranked[-1] if n else 0
    best, split = one, n
    for s in range(1, n):
        cost = s * ranked[s - 1] + (n - s) * ranked[-1]
        if cost < best:
            best, split = cost, s
    if split == n or best > (1 - min_saving) * one:
        return [list(range(n))] if n else []
    return [sorted(order[:split]), sorted(order[split:])]


# Greedy decoding of this small decoder falls into loops ("the left hand is further forward than
# the left hand. the left hand is further forward ..."). Forbidding a repeated token trigram
# (transformers' ``no_repeat_ngram_size``) stops them. Chosen on the validation split of a
# quickstart run (500 poses, student): BLEU-4 0.322 with no rule, 0.455 / 0.404 / 0.374 / 0.396
# forbidding repeated 3- / 4- / 5- / 6-grams; baseline_2d_no3d 0.248 -> 0.310 with 3.
NO_REPEAT_NGRAM = 3


class RepeatedNgrams:
    """The n-grams a text has written, so that none is written twice: after ``add(tokens)``
    with each new token, ``banned(tokens)`` lists the tokens that would complete an n-gram the
    text already holds."""

    def __init__(self, n: int):
        self.n = n
        self.next_of: dict[tuple[int, ...], set[int]] = {}

    def add(self, tokens: list[int]) -> None:
        if len(tokens) >= self.n:
            self.next_of.setdefault(tuple(tokens[len(tokens) - self.n:-1]), set()).add(tokens[-1])

    def banned(self, tokens: list[int]) -> list[int]:
        if len(tokens) < self.n - 1:
            return []
        return sorted(self.next_of.get(tuple(tokens[len(tokens) - self.n + 1:]), ()))


class PrefixDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig, embed_dim: int, tokenizer, weights: bool = True):
        super().__init__()
        from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

        self.tokenizer = tokenizer
        self.cfg = cfg
        if cfg.vocab is not None and cfg.pretrained:
            raise ValueError("a pretrained decoder keeps its own vocabulary: leave vocab unset")
        self._global = list(cfg.vocab) if cfg.vocab is not None else list(range(len(tokenizer)))
        self._local = {g: i for i, g in enumerate(self._global)}
        self._unk = self._local[tokenizer.unk_token_id]
        self.pad_id, self.bos_id, self.eos_id = (self._local[t] for t in (
            tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id))
        if cfg.pretrained and weights:
            self.lm = AutoModelForCausalLM.from_pretrained(cfg.pretrained, use_safetensors=True)
        else:
            self.lm = GPT2LMHeadModel(GPT2Config(
                vocab_size=len(self._global), n_positions=cfg.prefix_tokens + cfg.max_length + 8,
                n_embd=cfg.hidden_size, n_layer=cfg.num_layers, n_head=cfg.num_heads,
                bos_token_id=self.bos_id, eos_token_id=self.eos_id))
        width = self.lm.get_input_embeddings().embedding_dim  # any architecture, not only GPT-2
        self.prefix = nn.Linear(embed_dim, cfg.prefix_tokens * width)

    def _prefix(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.prefix(embedding).view(embedding.shape[0], self.cfg.prefix_tokens, -1)

    def _ids(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [self._local.get(t, self._unk) for t in ids]

    def _sequences(self, embedding: torch.Tensor, prompts: list[str], targets: list[str]
                   ) -> tuple[list[list[int]], list[int]]:
        """Token ids ``[CLS] prompt target [SEP]`` of each sample (cut at ``max_length``) and how
        many of them are prompt; one embedding, prompt and target per sample, or an error."""
        if not embedding.shape[0] == len(prompts) == len(targets):
            raise ValueError(f"{embedding.shape[0]} embeddings, {len(prompts)} prompts, "
                             f"{len(targets)} targets: one of each per sample")
        seqs, prompt_lengths = [], []
        for prompt, target in zip(prompts, targets):
            p = [self.bos_id] + self._ids(prompt)
            t = (self._ids(target) + [self.eos_id])[: self.cfg.max_length - len(p)]
            seqs.append(p + t)
            prompt_lengths.append(len(p))
        return seqs, prompt_lengths

    def _target_logits(self, embedding: torch.Tensor, prompts: list[str], targets: list[str]
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits at the positions that predict a target token: ``(logits, labels, sample)``
        with ``sample`` the row each position belongs to."""
        return self._logits_of(embedding, *self._sequences(embedding, prompts, targets))

    def _logits_of(self, embedding: torch.Tensor, seqs: list[list[int]], prompt_lengths: list[int]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One right-padded pass over ``seqs``. The vocabulary projection is most of the cost
        and prompts (questions) are most of the tokens, so only target positions are projected."""
        width = max(len(s) for s in seqs)
        device = embedding.device
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        lab = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for i, (s, n) in enumerate(zip(seqs, prompt_lengths)):
            ids[i, : len(s)] = torch.tensor(s)
            lab[i, n: len(s)] = torch.tensor(s[n:])
            mask[i, : len(s)] = 1
        ids, lab, mask = ids.to(device), lab.to(device), mask.to(device)
        prefix = self._prefix(embedding)
        k = prefix.shape[1]
        embeds = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        full_mask = torch.cat([torch.ones(len(seqs), k, dtype=mask.dtype, device=device),
                               mask], 1)
        hidden = self.lm.base_model(inputs_embeds=embeds,
                                    attention_mask=full_mask).last_hidden_state
        rows, cols = torch.nonzero(lab != -100, as_tuple=True)
        logits = self.lm.get_output_embeddings()(hidden[rows, cols + k - 1]).float()
        return logits, lab[rows, cols], rows

    def forward(self, embedding: torch.Tensor, prompts: list[str],
                targets: list[str]) -> torch.Tensor:
        """Mean cross-entropy of ``targets`` given the pose embedding and ``prompts``.

        Short and long samples run as separate passes (:func:`length_groups`): a training batch
        mixes answers (~15 tokens) with captions (~60), and one right-padded pass spent half its
        work on padding. Right padding leaves every real position's logits unchanged, and the
        mean is taken over all target tokens together, so the loss is the one-pass loss."""
        seqs, prompt_lengths = self._sequences(embedding, prompts, targets)
        total, count = embedding.new_zeros((), dtype=torch.float32), 0
        for group in length_groups([len(s) for s in seqs]):
            logits, labels, _ = self._logits_of(embedding[group], [seqs[i] for i in group],
                                                [prompt_lengths[i] for i in group])
            total = total + nn.functional.cross_entropy(logits, labels, reduction="sum")
            count += labels.numel()
        return total / max(count, 1)

    @torch.no_grad()
    def score(self, embedding: torch.Tensor, prompts: list[str],
              targets: list[str]) -> torch.Tensor:
        """Log-likelihood of each target (summed over its tokens and the closing ``[SEP]``):
        ranks the candidates of a closed answer vocabulary."""
        logits, labels, rows = self._target_logits(embedding, prompts, targets)
        token_ll = -nn.functional.cross_entropy(logits, labels, reduction="none")
        return torch.zeros(len(prompts), device=logits.device).index_add_(0, rows, token_ll)

    @functools.cached_property
    def caption_grammar(self) -> CaptionGrammar:
        """The caption grammar over this decoder's vocabulary (``models/grammar.py``)."""

        def encode(text: str) -> list[int] | None:
            ids = [self._local.get(g) for g in
                   self.tokenizer(text, add_special_tokens=False)["input_ids"]]
            return None if None in ids else ids

        return CaptionGrammar(encode, self.eos_id)

    @torch.no_grad()
    def generate(self, embedding: torch.Tensor, prompts: list[str],
                 max_new_tokens: int | None = None,
                 no_repeat_ngram: int | None = NO_REPEAT_NGRAM,
                 grammar: CaptionGrammar | None = None,
                 closed: list[frozenset[int]] | None = None) -> list[str]:
        """Greedy decoding, batched: prompts are left-padded and positions follow the mask.
        Keys and values of earlier positions are cached, so each new token costs one position
        of compute, not the whole prefix again. ``max_new_tokens`` defaults to what training
        fitted (``cfg.max_length`` less the prompt); no token n-gram of ``no_repeat_ngram``
        tokens is written twice in one text (None: no such rule; see :data:`NO_REPEAT_NGRAM`).
        With a ``grammar`` (``caption_grammar``) each text is a caption of template clauses,
        each posecode stated once, and the n-gram rule is not applied; ``closed`` gives each
        text the grammar units it may not use (``CaptionGrammar.closed_by``)."""
        device = embedding.device
        if embedding.shape[0] != len(prompts):
            raise ValueError(f"{embedding.shape[0]} embeddings but {len(prompts)} prompts")
        if no_repeat_ngram is not None and no_repeat_ngram < 1:
            raise ValueError(f"no_repeat_ngram must be >= 1 or None, got {no_repeat_ngram}")
        prompt_ids = [[self.bos_id] + self._ids(p) for p in prompts]
        width = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompt_ids):
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1
        prefix = self._prefix(embedding)
        k = prefix.shape[1]
        if max_new_tokens is None:
            max_new_tokens = self.cfg.max_length - width
        max_new_tokens = min(max_new_tokens, self.lm.config.max_position_embeddings - k - width)
        written: list[list[int]] = [[] for _ in prompts]  # local ids
        seen = ([RepeatedNgrams(no_repeat_ngram) for _ in prompts]
                if no_repeat_ngram and grammar is None else [])
        states = ([CaptionState(closed=closed[i] if closed else frozenset())
                   for i in range(len(prompts))] if grammar is not None else [])
        done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
        step_input = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        full_mask = torch.cat([torch.ones(len(prompts), k, dtype=mask.dtype, device=device),
                               mask], 1)
        past = None
        lean = gpt2_step.LeanPass(self.lm) if gpt2_step.supports(self.lm) else None
        for step in range(max(max_new_tokens, 0)):
            positions = (full_mask.cumsum(1) - 1).clamp(min=0)[:, -step_input.shape[1]:]
            logits, past = self._next_logits(step_input, full_mask, positions, past, lean)
            for i, rule in enumerate(seen):
                banned = rule.banned(written[i])
                if banned:
                    logits[i, banned] = float("-inf")
            if states:
                allowed = torch.full_like(logits, float("-inf"))
                for i, state in enumerate(states):
                    ok = grammar.allowed(state, max_new_tokens - step)
                    if not ok and not state.started and state.closed:
                        # nothing backed to begin with: the grammar alone, not an empty caption
                        states[i] = state = dataclasses.replace(state, closed=frozenset())
                        ok = grammar.allowed(state, max_new_tokens - step)
                    allowed[i, ok or [self.eos_id]] = 0.0
                logits = logits + allowed
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            for i, t in enumerate(nxt.tolist()):
                if not done[i] and t != self.eos_id:
                    written[i].append(t)
                    if seen:
                        seen[i].add(written[i])
                    if states:
                        states[i] = grammar.advance(states[i], t)
            done |= nxt == self.eos_id
            if bool(done.all()):
                break
            step_input = self.lm.get_input_embeddings()(nxt[:, None])
            full_mask = torch.cat([full_mask, (~done | (nxt == self.eos_id)).long()[:, None]], 1)
        return [self.tokenizer.decode([self._global[t] for t in w],
                                      skip_special_tokens=True).strip()
                for w in written]

    def _next_logits(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                     past, lean: gpt2_step.LeanPass | None) -> tuple[torch.Tensor, object]:
        """Next-token logits after ``embeds`` and the extended key/value cache. A GPT-2 decoder
        (the default) runs :mod:`gpt2_step`'s lean pass ``lean``, which at this size more than
        halves the time of a caption; any other pretrained architecture (``lean`` None) runs
        its transformers forward."""
        if lean is not None:
            return lean.step(embeds, positions, mask, past)
        result = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                         cache=past, use_cache=True, logits_to_keep=1)
        return result.logits[:, -1], result.cache
