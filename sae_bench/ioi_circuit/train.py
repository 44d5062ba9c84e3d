"""Recipe that trains ioi-circuit from scratch on CPU and writes the shipped assets.

    python -m sae_bench.ioi_circuit.train --out sae_bench/assets/ioi_circuit --seed 0

The training loop, weight processing and asset writing are ioi-tiny's (`sae_bench.ioi_tiny.train`)
run on this model's corpus (`sae_bench.ioi_circuit.corpus`). Deterministic: one
`torch.Generator` seeded with `--seed` draws the initial weights and every document, on a fixed
thread count, so the same seed gives bit-identical weights on the same CPU build of torch.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass
from typing import Any

import torch

from sae_bench.ioi_circuit import corpus
from sae_bench.ioi_circuit.model import MODEL_NAME, RETRAIN_COMMAND
from sae_bench.ioi_tiny import train as tiny_train


@dataclass(frozen=True)
class TrainConfig(tiny_train.TrainConfig):
    """ioi-tiny's knobs with this model's defaults, plus the corpus's own."""

    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    n_ctx: int = 64
    steps: int = 3000
    batch_size: int = 32
    answer_weight: float = 4.0
    max_fillers: int = 8  # filler words inserted per episode, uniform in 0..max_fillers
    eval_n: int = 2000


def corpus_spec(cfg: TrainConfig) -> tiny_train.CorpusSpec:
    """The corpus the shared loop trains on, at the config's context length and filler count."""
    return tiny_train.CorpusSpec(
        MODEL_NAME, corpus.vocabulary,
        functools.partial(corpus.sample_documents, n_ctx=cfg.n_ctx, max_fillers=cfg.max_fillers),
    )


def train_raw(cfg: TrainConfig, *, progress: bool = True):
    """(LN model, config dict, tokenizer) trained on ioi-circuit's corpus."""
    return tiny_train.train_raw(cfg, progress=progress, source=corpus_spec(cfg))


def main(argv: list[str] | None = None) -> int:
    args, cfg = tiny_train.parse_recipe_args(
        argv, TrainConfig, "python -m sae_bench.ioi_circuit.train", __doc__.split("\n\n")[0])

    from sae_bench.ioi_circuit.behaviour import behaviour_metrics, format_behaviour

    with tiny_train.fixed_threads(cfg.threads):
        model, config, err, wall = tiny_train.train(cfg, progress=not args.no_progress,
                                                    source=corpus_spec(cfg))
        print(f"trained in {wall:.1f} s; processing changed centred logits by at most "
              + ", ".join(f"{e:.1e} ({dtype})" for dtype, e in err.items()))
        metrics = behaviour_metrics(model, n=cfg.eval_n, seed=cfg.eval_seed)
    print(format_behaviour(metrics))
    recipe: dict[str, Any] = {
        "command": "python -m sae_bench.ioi_circuit.train " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "canonical_command": RETRAIN_COMMAND,
        "train_config": dataclasses.asdict(cfg),
        "processing": "fold_ln, center_writing_weights, center_unembed, "
                      "refactor_factored_attn_matrices (TransformerLens)",
        "processing_max_centred_logit_error": err,
        "train_wall_seconds": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
        "versions": tiny_train.library_versions(),
        "held_out_pairs": {"rule": "sae_bench.ioi_tiny.corpus.held_out",
                           "fraction": 1 / 5},
        "eval": {"n": cfg.eval_n, "seed": cfg.eval_seed, "metrics": metrics},
    }
    tiny_train.write_assets(args.out, model, config, recipe)
    print(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
