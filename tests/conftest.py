"""Shared fixtures: small models built from configs (no network), tiny data."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def gpt2_tok():
    from sae_bench.models.registry import gpt2_tokenizer

    return gpt2_tokenizer()


@pytest.fixture(scope="session")
def small_gpt2_vocab_model(gpt2_tok):
    """A 2-layer random transformer with GPT-2's tokenizer: fast, for task and plumbing tests."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=gpt2_tok.vocab_size,
        n_ctx=64, act_fn="gelu_new", normalization_type="LNPre", default_prepend_bos=True,
        seed=0,
    )
    return HookedTransformer(cfg, tokenizer=gpt2_tok, move_to_device=False).eval()


@pytest.fixture(scope="session")
def gpt2_random():
    from sae_bench.models.registry import load_model

    return load_model("gpt2-random")
