"""ioi-tiny's architecture, weight processing, and loading the shipped model.

The shipped weights are already processed as in Makelov et al. (2024) (`fold_ln`,
`center_writing_weights`, `center_unembed`, `refactor_factored_attn_matrices`), and `config.json`
describes the processed model (`normalization_type="LNPre"`), so `load` is a plain load.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import torch

from sae_bench.errors import UserError

ASSET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "recipe.json")
RETRAIN_COMMAND = ("python -m sae_bench.models.ioi_tiny.train --out sae_bench/assets/ioi_tiny "
                   "--seed 0")

# Processing of Makelov et al. (2024); it changes the basis of q/k/v/z, so l2-based steps depend
# on it. `center_unembed` shifts every logit at a position by the same amount (LD is unchanged).
PROCESSING = dict(
    fold_ln=True,
    center_writing_weights=True,
    center_unembed=True,
    refactor_factored_attn_matrices=True,
)


def make_config(
    d_vocab: int,
    *,
    n_layers: int,
    d_model: int,
    n_heads: int,
    d_mlp: int,
    n_ctx: int,
    normalization_type: str = "LN",
    model_name: str = "ioi-tiny",
    attn_only: bool = False,
) -> dict[str, Any]:
    """HookedTransformerConfig arguments for a GPT-2-like model (LN, learned positions, GELU;
    without MLPs when `attn_only`).

    Returned as a plain dict: it is what `config.json` stores. `init_weights=False` because the
    trainer initialises from its own generator (TransformerLens would seed the global RNG).
    """
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    return dict(
        model_name=model_name,
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_model // n_heads,
        d_mlp=d_mlp,
        d_vocab=d_vocab,
        n_ctx=n_ctx,
        act_fn="gelu",
        normalization_type=normalization_type,
        positional_embedding_type="standard",
        default_prepend_bos=True,
        init_weights=False,
        **({"attn_only": True} if attn_only else {}),
    )


def build(config: dict[str, Any], tokenizer=None):
    """An (uninitialised) `HookedTransformer` from config arguments, with `tokenizer` attached.

    Built on the CPU (TransformerLens would otherwise record "cuda" as the device where there is
    one while the weights stay on the CPU); `model.to(device)` moves it and updates the config.
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    return HookedTransformer(HookedTransformerConfig(**config, device="cpu"), tokenizer=tokenizer,
                             move_to_device=False)


def parameters_only(model) -> dict[str, torch.Tensor]:
    """The model's parameters (no buffers such as attention masks), contiguous, for safetensors."""
    return {name: p.detach().contiguous().clone() for name, p in model.named_parameters()}


def process(trained, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(processed model, its config) from a model trained with `config` (`normalization_type="LN"`).

    The processed model computes the same log-probabilities; logits differ only by a per-position
    constant (`center_unembed`) and by float32 rounding: TransformerLens processes weights in
    float32 whatever their dtype, and the SVDs of `refactor_factored_attn_matrices` dominate the
    rounding. `check_processing` measures it. The result depends on the thread count (run it
    under `train.fixed_threads`, as the recipe does, for bit-identical weights).
    """
    processed = build(config, tokenizer=trained.tokenizer)
    processed.load_and_process_state_dict(
        {k: v.detach().clone() for k, v in trained.state_dict().items()}, **PROCESSING
    )
    # fold_ln turns LN into LNPre (normalisation without weights); save the config that matches.
    return processed.eval(), {**config, "normalization_type": processed.cfg.normalization_type}


@torch.no_grad()
def check_processing(trained, processed, tokens: torch.Tensor, rtol: float | None = 1e-5,
                     dtype: torch.dtype = torch.float64) -> float:
    """Max |difference| of logits centred over the vocabulary, on `tokens` [batch, pos].

    Both models run on copies cast to `dtype`: in float64 what remains is the processing's own
    rounding, not float32 arithmetic noise in the forward pass.
    Raises AssertionError when the error exceeds `rtol` times the largest centred logit (None:
    only measure): processing must not change what the model computes. The bound is relative
    because float32 rounding grows with the logits' scale: an absolute one rejected a sound
    model whose logits reached further than the shipped one's.
    """
    def centred(model) -> torch.Tensor:  # [batch, pos, d_vocab]
        logits = copy.deepcopy(model).to(dtype, print_details=False).eval()(tokens)
        return logits - logits.mean(-1, keepdim=True)

    reference = centred(trained)
    err = float((reference - centred(processed)).abs().max())
    bound = None if rtol is None else rtol * float(reference.abs().max())
    assert bound is None or err <= bound, (
        f"processing changed the logits by {err:.2e} "
        f"(> {rtol:.0e} x the largest logit = {bound:.2e})")
    return err


def asset_dir(folder: str = "ioi_tiny"):
    """The shipped assets of a model (a `Traversable`; works from a wheel)."""
    return resources.files("sae_bench") / "assets" / folder


def load_from(folder, device: str = "cpu", *, label: str = "ioi-tiny",
              retrain_command: str = RETRAIN_COMMAND):
    """Load a processed model (ioi-tiny, or another model written by the same trainer, named
    `label`) from a folder written by the trainer. Raises `UserError`.

    `folder` is a `pathlib.Path` or an `importlib.resources` Traversable: files are read as bytes,
    so this also works from a zipped package.
    """
    from safetensors.torch import load as load_safetensors

    from sae_bench.models.ioi_tiny.tokenizer import load_tokenizer

    hint = f"rebuild it with `{retrain_command}`"
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise UserError(f"{label} asset {name} is missing from {folder}; {hint}.")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        tokenizer = load_tokenizer(folder / "tokenizer.json", label)
        state = load_safetensors((folder / "model.safetensors").read_bytes())
        model = build(config, tokenizer=tokenizer)
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Buffers (causal masks) are rebuilt by the model; every parameter must come from the file.
        params = {n for n, _ in model.named_parameters()}
        if unexpected or params & set(missing):
            raise ValueError(f"missing {sorted(params & set(missing))}, unexpected {unexpected}")
    # Broad on purpose: `tokenizers` raises a bare Exception on a corrupt file, safetensors its own
    # error, a bad config a TypeError; all mean the same thing to the user.
    except Exception as exc:
        raise UserError(
            f"{label} assets in {folder} are corrupt or incompatible "
            f"({exc.__class__.__name__}: {exc}); {hint}."
        ) from None
    return model.to(device, print_details=False).eval()


def load(device: str = "cpu"):
    """The shipped ioi-tiny as an eval-mode `HookedTransformer` with its tokenizer attached."""
    return load_from(asset_dir(), device=device)
