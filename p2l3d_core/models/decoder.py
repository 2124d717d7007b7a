"""Text decoder: a GPT-2-architecture causal LM that writes captions and answers from a pose
embedding, which enters as ``prefix_tokens`` learned prefix vectors (ClipCap style).

It shares the text encoder's WordPiece tokenizer, so one tokenizer ships with a model and
nothing is downloaded. Sequence: ``[CLS] prompt target [SEP]``; the loss covers the target and
the closing ``[SEP]`` only. Prompts: ``"caption:"`` for a description, ``"question: Q answer:"``
for an answer.
"""

from __future__ import annotations

import torch
from torch import nn

from p2l3d_core.models.config import DecoderConfig

CAPTION_PROMPT = "caption:"


def question_prompt(question: str) -> str:
    return f"question: {question} answer:"


class PrefixDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig, embed_dim: int, tokenizer, weights: bool = True):
        super().__init__()
        from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

        self.tokenizer = tokenizer
        self.cfg = cfg
        if cfg.pretrained and weights:
            self.lm = AutoModelForCausalLM.from_pretrained(cfg.pretrained, use_safetensors=True)
        else:
            self.lm = GPT2LMHeadModel(GPT2Config(
                vocab_size=len(tokenizer), n_positions=cfg.prefix_tokens + cfg.max_length + 8,
                n_embd=cfg.hidden_size, n_layer=cfg.num_layers, n_head=cfg.num_heads,
                bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id))
        width = self.lm.config.n_embd
        self.prefix = nn.Linear(embed_dim, cfg.prefix_tokens * width)

    def _prefix(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.prefix(embedding).view(embedding.shape[0], self.cfg.prefix_tokens, -1)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def forward(self, embedding: torch.Tensor, prompts: list[str], targets: list[str]) -> torch.Tensor:
        """Mean cross-entropy of ``targets`` given the pose embedding and ``prompts``."""
        tok = self.tokenizer
        if not embedding.shape[0] == len(prompts) == len(targets):
            raise ValueError(f"{embedding.shape[0]} embeddings, {len(prompts)} prompts, "
                             f"{len(targets)} targets: one of each per sample")
        seqs, labels = [], []
        for prompt, target in zip(prompts, targets):
            p = [tok.cls_token_id] + self._ids(prompt)
            t = (self._ids(target) + [tok.sep_token_id])[: self.cfg.max_length - len(p)]
            seqs.append(p + t)
            labels.append([-100] * len(p) + t)
        width = max(len(s) for s in seqs)
        device = embedding.device
        ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long, device=device)
        lab = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for i, (s, l) in enumerate(zip(seqs, labels)):
            ids[i, : len(s)] = torch.tensor(s, device=device)
            lab[i, : len(l)] = torch.tensor(l, device=device)
            mask[i, : len(s)] = 1
        prefix = self._prefix(embedding)
        k = prefix.shape[1]
        embeds = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        full_mask = torch.cat([torch.ones(len(seqs), k, dtype=mask.dtype, device=device), mask], 1)
        full_labels = torch.cat([torch.full((len(seqs), k), -100, dtype=lab.dtype, device=device), lab], 1)
        return self.lm(inputs_embeds=embeds, attention_mask=full_mask, labels=full_labels).loss

    @torch.no_grad()
    def generate(self, embedding: torch.Tensor, prompts: list[str], max_new_tokens: int = 40) -> list[str]:
        """Greedy decoding, batched: prompts are left-padded and positions follow the mask."""
        tok = self.tokenizer
        device = embedding.device
        if embedding.shape[0] != len(prompts):
            raise ValueError(f"{embedding.shape[0]} embeddings but {len(prompts)} prompts")
        prompt_ids = [[tok.cls_token_id] + self._ids(p) for p in prompts]
        width = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompt_ids):
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1
        prefix = self._prefix(embedding)
        k = prefix.shape[1]
        out: list[list[int]] = [[] for _ in prompts]
        done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            embeds = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
            full_mask = torch.cat([torch.ones(len(prompts), k, dtype=mask.dtype, device=device), mask], 1)
            positions = (full_mask.cumsum(1) - 1).clamp(min=0)
            logits = self.lm(inputs_embeds=embeds, attention_mask=full_mask, position_ids=positions).logits
            nxt = logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, tok.pad_token_id), nxt)
            for i, t in enumerate(nxt.tolist()):
                if not done[i] and t != tok.sep_token_id:
                    out[i].append(t)
            done |= nxt == tok.sep_token_id
            ids = torch.cat([ids, nxt[:, None]], 1)
            mask = torch.cat([mask, (~done | (nxt == tok.sep_token_id)).long()[:, None]], 1)
            if bool(done.all()):
                break
        return [tok.decode(o, skip_special_tokens=True).strip() for o in out]
