"""A lean incremental forward pass over a transformers ``GPT2LMHeadModel``'s own weights, for
greedy decoding, compiled with TorchScript.

Why: the default decoder is tiny (2 layers, width 128), so a generated token costs
microseconds of arithmetic and, through transformers' forward, about a millisecond of per-call
machinery (cache objects, mask building, output dataclasses, argument checks). This pass runs
the same blocks with the model's own weights and settings (layer norms, attention scaling,
activation) as direct tensor operations, keys and values kept in plain tensors: a caption took
~100 ms through transformers on one CPU thread of the development machine, ~50 ms in Python
this way (README, "Results"). What is left is the interpreter's cost of each small operation,
so the pass is a TorchScript function: a quickstart student's caption at batch 1, one thread,
interleaved, 66 ms through transformers, 25.6 ms through this pass in Python, 21.8 ms scripted
(``benchmarks/decoder_pass.py``, 2026-12-04). It is for inference only (no dropout, no
gradients); training keeps the transformers forward. Tests check both against each other,
logits and generated tokens, for every activation the pass claims.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

Cache = list[torch.Tensor]  # keys and values of each block in turn: k0, v0, k1, v1, ...

# transformers' GPT-2 activation names -> the pass's codes (torch has the tanh GELU that
# GPT-2's default ``gelu_new`` writes as seven operations as one kernel)
ACTIVATIONS = {"gelu_new": 0, "gelu_pytorch_tanh": 0, "gelu": 1, "relu": 2, "silu": 3, "swish": 3,
               "tanh": 4}


def supports(lm: nn.Module) -> bool:
    """Whether ``lm`` is a GPT-2 language model this pass can run (self-attention only, an
    activation it knows)."""
    from transformers import GPT2LMHeadModel

    return (isinstance(lm, GPT2LMHeadModel) and not lm.config.add_cross_attention
            and lm.config.activation_function in ACTIVATIONS)


def _blocks(embeds: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
            weights: list[torch.Tensor], scales: list[float], heads: int, eps: float,
            activation: int, cache: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The blocks, the final layer norm and the head at the last position. ``weights``: per
    block ln_1 (w, b), c_attn (w, b), c_proj (w, b), ln_2 (w, b), c_fc (w, b), mlp c_proj
    (w, b) (transformers' ``Conv1D``: input @ weight + bias), then ln_f (w, b), the head's
    weight and the position embeddings."""
    batch, new, width = embeds.shape[0], embeds.shape[1], embeds.shape[2]
    hidden = embeds + torch.nn.functional.embedding(positions, weights[-1])
    extended: list[torch.Tensor] = []
    for i in range(len(scales)):
        w = weights[12 * i:12 * i + 12]
        x = torch.nn.functional.layer_norm(hidden, [width], w[0], w[1], eps)
        qkv = torch.addmm(w[3], x.reshape(-1, width), w[2]).view(batch, new, 3 * width)
        q, k, v = qkv.split(width, dim=2)
        q = q.view(batch, new, heads, -1).transpose(1, 2)
        k = k.view(batch, new, heads, -1).transpose(1, 2)
        v = v.view(batch, new, heads, -1).transpose(1, 2)
        if len(cache) > 0:
            k = torch.cat([cache[2 * i], k], 2)
            v = torch.cat([cache[2 * i + 1], v], 2)
        extended.append(k)
        extended.append(v)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                               scale=scales[i])
        out = torch.addmm(w[5], out.transpose(1, 2).reshape(-1, width), w[4])
        hidden = hidden + out.view(batch, new, width)
        x = torch.nn.functional.layer_norm(hidden, [width], w[6], w[7], eps)
        x = torch.addmm(w[9], x.reshape(-1, width), w[8])
        if activation == 0:
            x = torch.nn.functional.gelu(x, approximate="tanh")
        elif activation == 1:
            x = torch.nn.functional.gelu(x)
        elif activation == 2:
            x = torch.relu(x)
        elif activation == 3:
            x = torch.nn.functional.silu(x)
        else:
            x = torch.tanh(x)
        hidden = hidden + torch.addmm(w[11], x, w[10]).view(batch, new, width)
    last = torch.nn.functional.layer_norm(hidden[:, -1], [width], weights[-4], weights[-3], eps)
    return torch.nn.functional.linear(last, weights[-2]), extended


@functools.lru_cache(maxsize=1)
def _compiled():
    """The scripted pass, compiled once per process on first use (a fraction of a second)."""
    return torch.jit.script(_blocks)


def _weights(lm: nn.Module) -> list[torch.Tensor]:
    body = lm.transformer
    out: list[torch.Tensor] = []
    for block in body.h:
        attn, mlp = block.attn, block.mlp
        out += [block.ln_1.weight, block.ln_1.bias, attn.c_attn.weight, attn.c_attn.bias,
                attn.c_proj.weight, attn.c_proj.bias, block.ln_2.weight, block.ln_2.bias,
                mlp.c_fc.weight, mlp.c_fc.bias, mlp.c_proj.weight, mlp.c_proj.bias]
    return out + [body.ln_f.weight, body.ln_f.bias, lm.lm_head.weight, body.wpe.weight]


class LeanPass:
    """One model's pass: its weights and settings read once (per generation), then ``step``
    per token. Why once: looking the ~30 weights up through the modules took about a third as
    long as the scripted pass itself."""

    def __init__(self, lm: nn.Module):
        config = lm.config
        self.weights = _weights(lm)
        self.scales = [float(block.attn.scaling) for block in lm.transformer.h]
        self.heads = int(config.n_head)
        self.eps = float(config.layer_norm_epsilon)
        self.activation = ACTIVATIONS[config.activation_function]

    @torch.no_grad()
    def step(self, embeds: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor,
             cache: Cache | None) -> tuple[torch.Tensor, Cache]:
        """Logits of the next token after ``embeds`` ``(B, T, D)``, and the cache extended by
        them.

        ``positions`` ``(B, T)`` are the position ids of the new inputs; ``key_mask`` ``(B, S)``
        marks the valid ones among all ``S`` = cached + new positions (left padding reads
        False). New inputs attend causally among themselves and to every valid cached position."""
        new, keys = embeds.shape[1], key_mask.shape[1]
        if new == 1 and bool(key_mask.all()):
            mask = None  # one new token seeing every key: attention's unmasked fast path
        else:
            causal = torch.ones(new, keys, dtype=torch.bool, device=embeds.device).tril(keys - new)
            mask = causal[None, None] & key_mask.bool()[:, None, None, :]
        return _compiled()(embeds, positions, mask, self.weights, self.scales, self.heads, self.eps,
                           self.activation, cache or [])
