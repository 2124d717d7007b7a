"""A lean incremental forward pass over a transformers ``GPT2LMHeadModel``'s own modules, for
greedy decoding.

Why: the default decoder is tiny (2 layers, width 128), so a generated token costs
microseconds of arithmetic and about a millisecond of transformers' per-call machinery (cache
objects, mask building, output dataclasses, argument checks). A caption is up to 40 tokens:
through the transformers forward a student's caption took ~100 ms on one CPU thread of the
development machine, ~50 ms through this pass (README, "Results"). It runs the same blocks
with the model's own weights and settings (layer norms, attention scaling, activation),
calling the tensor operations directly and keeping keys and values in plain tensors. It is
for inference only (no dropout, no gradients); training keeps the transformers forward. Tests
check both against each other, logits and generated tokens.
"""

from __future__ import annotations

import torch
from torch import nn

Cache = list[tuple[torch.Tensor, torch.Tensor]]


def supports(lm: nn.Module) -> bool:
    """Whether ``lm`` is a GPT-2 language model this step can run (self-attention only)."""
    from transformers import GPT2LMHeadModel

    return isinstance(lm, GPT2LMHeadModel) and not lm.config.add_cross_attention


def _dense(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transformers' ``Conv1D`` (a linear layer with a transposed weight), without the module call."""
    return torch.addmm(conv.bias, x.reshape(-1, x.shape[-1]), conv.weight).view(*x.shape[:-1], -1)


def _norm(ln: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _activation(lm: nn.Module):
    """GPT-2's default ``gelu_new`` is the tanh GELU written as seven tensor operations; torch
    has it as one kernel. Any other activation is the model's own module."""
    if lm.config.activation_function in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: nn.functional.gelu(x, approximate="tanh")
    return lm.transformer.h[0].mlp.act


@torch.no_grad()
def step(lm: nn.Module, embeds: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor,
         cache: Cache | None) -> tuple[torch.Tensor, Cache]:
    """Logits of the next token after ``embeds`` ``(B, T, D)``, and the cache extended by them.

    ``positions`` ``(B, T)`` are the position ids of the new inputs; ``key_mask`` ``(B, S)`` marks
    the valid ones among all ``S`` = cached + new positions (left padding reads False). New
    inputs attend causally among themselves and to every valid cached position."""
    body = lm.transformer
    batch, new, width = embeds.shape
    keys = key_mask.shape[1]
    if new == 1 and bool(key_mask.all()):
        mask = None  # one new token seeing every key: attention's unmasked fast path
    else:
        causal = torch.ones(new, keys, dtype=torch.bool, device=embeds.device).tril(keys - new)
        mask = causal[None, None] & key_mask.bool()[:, None, None, :]
    hidden = embeds + nn.functional.embedding(positions, body.wpe.weight)
    act = _activation(lm)
    extended: Cache = []
    for i, block in enumerate(body.h):
        attn = block.attn
        q, k, v = (t.view(batch, new, attn.num_heads, -1).transpose(1, 2)
                   for t in _dense(attn.c_attn, _norm(block.ln_1, hidden)).split(width, dim=2))
        if cache is not None:
            k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
        extended.append((k, v))
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)
        hidden = hidden + _dense(attn.c_proj, out.transpose(1, 2).reshape(batch, new, width))
        mlp = block.mlp
        hidden = hidden + _dense(mlp.c_proj, act(_dense(mlp.c_fc, _norm(block.ln_2, hidden))))
    last = _norm(body.ln_f, hidden[:, -1])
    return nn.functional.linear(last, lm.lm_head.weight, lm.lm_head.bias), extended
