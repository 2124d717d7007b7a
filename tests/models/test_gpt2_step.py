"""The lean GPT-2 decoding pass against the transformers forward it replaces at inference."""

from __future__ import annotations

import pytest
import torch

from p2l3d_core.models import gpt2_step
from p2l3d_core.models.config import DEFAULT_TEXT_MODEL, DecoderConfig
from p2l3d_core.models.decoder import CAPTION_PROMPT, PrefixDecoder, corpus_vocab, question_prompt
from p2l3d_core.models.encoders import resolve_pretrained

EMBED = 24
TEXTS = ["the person is kneeling with the left hand raised", "left", "right",
         "Which hand is further forward?", "Is the right knee bent?"]
PROMPTS = [CAPTION_PROMPT, question_prompt(TEXTS[3]), question_prompt(TEXTS[4]), CAPTION_PROMPT]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_pretrained(DEFAULT_TEXT_MODEL))


def _decoder(tokenizer) -> PrefixDecoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(num_layers=2, hidden_size=32, num_heads=4, prefix_tokens=3, max_length=48,
                        vocab=corpus_vocab(tokenizer, TEXTS))
    decoder = PrefixDecoder(cfg, EMBED, tokenizer).eval()
    with torch.no_grad():  # no early [SEP]: every step of a long generation is compared
        decoder.lm.get_output_embeddings().weight[decoder.eos_id] -= 100
    return decoder


def _transformers_only(monkeypatch) -> None:
    monkeypatch.setattr(gpt2_step, "supports", lambda lm: False)


def _check_against_transformers(lm) -> None:
    """Logits of a left-padded batch, first over a whole prefix, then one token at a time from
    the cache, equal those of ``GPT2LMHeadModel.forward`` over the full sequence each time."""
    torch.manual_seed(1)
    embeds = torch.randn(3, 7, lm.config.n_embd)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, :2] = 0  # left padding
    mask[2, :4] = 0
    cache = None
    seen = 0
    lean = gpt2_step.LeanPass(lm)
    for end in (5, 6, 7):  # a 5-position first pass, then two single tokens
        positions = (mask[:, :end].cumsum(1) - 1).clamp(min=0)
        logits, cache = lean.step(embeds[:, seen:end], positions[:, seen:], mask[:, :end], cache)
        expected = lm(inputs_embeds=embeds[:, :end], attention_mask=mask[:, :end],
                      position_ids=positions).logits[:, -1]
        valid = mask[:, end - 1].bool()  # rows whose newest position is padding have no answer
        torch.testing.assert_close(logits[valid], expected[valid], rtol=1e-3, atol=1e-3)
        seen = end


def test_step_matches_the_transformers_forward_with_left_padding(tokenizer):
    _check_against_transformers(_decoder(tokenizer).lm)


@pytest.mark.parametrize("activation", ["gelu", "relu", "silu", "tanh"])
def test_step_runs_each_activation_it_claims_as_transformers_does(activation):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                    activation_function=activation)).eval()
    assert gpt2_step.supports(lm)
    _check_against_transformers(lm)


def test_generation_writes_the_same_tokens_as_the_transformers_forward(tokenizer, monkeypatch):
    decoder = _decoder(tokenizer)
    z = torch.randn(len(PROMPTS), EMBED, generator=torch.Generator().manual_seed(2))
    lean = decoder.generate(z, PROMPTS, max_new_tokens=20)
    single = [decoder.generate(z[i:i + 1], [p], max_new_tokens=20)[0]
              for i, p in enumerate(PROMPTS)]
    _transformers_only(monkeypatch)
    assert decoder.generate(z, PROMPTS, max_new_tokens=20) == lean
    assert lean == single  # padding in a batch changes nothing
    assert all(len(text.split()) >= 5 for text in lean)  # long enough to compare many steps


def test_a_decoder_that_is_not_gpt2_generates_through_transformers(tokenizer, tmp_path):
    """A pretrained decoder of another architecture (here a tiny Llama built from a config and
    saved as a user's would be) is not run by the lean pass but still generates."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32,
                                         intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2))
    llama.save_pretrained(tmp_path / "llama")
    decoder = PrefixDecoder(DecoderConfig(pretrained=str(tmp_path / "llama"), prefix_tokens=2),
                            EMBED, tokenizer).eval()
    assert not gpt2_step.supports(decoder.lm) and gpt2_step.supports(_decoder(tokenizer).lm)
    texts = decoder.generate(torch.randn(2, EMBED), PROMPTS[:2], max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
