"""Recipe that trains ioi-circuit from scratch on CPU and writes the shipped assets.

    python -m sae_bench.models.ioi_circuit.train --out sae_bench/assets/ioi_circuit --seed 0

The training loop, weight processing and asset writing are ioi-tiny's
(`sae_bench.models.ioi_tiny.train`) run on this model's corpus
(`sae_bench.models.ioi_circuit.corpus`). Deterministic: one `torch.Generator` seeded with
`--seed` draws the initial weights and every document, on a fixed thread count, so the same seed
gives bit-identical weights on the same CPU build of torch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import torch

from sae_bench.models.ioi_circuit import corpus, interchange
from sae_bench.models.ioi_circuit.model import MODEL_NAME, RETRAIN_COMMAND
from sae_bench.models.ioi_tiny import train as tiny_train


@dataclass(frozen=True)
class TrainConfig(tiny_train.TrainConfig):
    """ioi-tiny's knobs with this model's defaults, plus the corpus's own."""

    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    n_ctx: int = 64
    attn_only: bool = True
    steps: int = 5000
    batch_size: int = 32
    weight_decay: float = 0.05
    answer_weight: float = 4.0
    # The corpus mix (`corpus.Mix`).
    cast: int = 6
    task_exact: float = 0.15
    distractor: float = 0.4
    third_name: float = 0.0
    role_words: float = 0.0
    s_repeats: float = 0.5
    self_closings: float = 0.0
    crowd: float = 0.7
    varied_pairs: float = 0.5
    roll_call: float = 0.5
    echo: float = 0.0
    max_fillers: int = 8
    # Steps of the curriculum's first phase (`corpus.SIMPLE` documents), then the mix above.
    simple_steps: int = 0
    # Interchange-intervention training (`interchange`): weight of its loss (0: off, nothing
    # drawn), the step it starts at, pairs per step, the strict run's heads, the weight of the
    # mapped heads' attention term, and the heads mapped to the circuit's nodes.
    iit: float = 1.0
    iit_from_step: int = 0
    iit_batch: int = 16
    iit_strictness: str = "one"  # `interchange.STRICTNESS`
    iit_attention: float = 0.3
    # 0: the attention term is -log(attention to the node's token), which pulls it towards 1.
    # Above 0: -log(min(attention / floor, 1)), which stops pulling once the floor is reached and
    # leaves the rest of the attention free (the floor for name movers is 0.6).
    iit_attention_floor: float = 0.0
    iit_dup: str = "1.0"
    iit_inh: str = "2.0,2.1"
    iit_nm: str = "3.0,3.1"
    eval_n: int = 2000


def corpus_mix(cfg: TrainConfig) -> corpus.Mix:
    """The corpus proportions a config trains on (after its `simple_steps`)."""
    return corpus.Mix(cast=cfg.cast, task_exact=cfg.task_exact, distractor=cfg.distractor,
                      third_name=cfg.third_name, role_words=cfg.role_words,
                      s_repeats=cfg.s_repeats, self_closings=cfg.self_closings,
                      crowd=cfg.crowd, varied_pairs=cfg.varied_pairs, roll_call=cfg.roll_call,
                      echo=cfg.echo, max_fillers=cfg.max_fillers)


def shipped_training_text(n: int, gen: torch.Generator) -> list[corpus.Document]:
    """`n` documents of the shipped model's training text: the mix and context length its
    `recipe.json` records (what `sae-bench train-sae --data text` trains on). Read from the
    recipe rather than the defaults, so the text follows the weights that ship."""
    from sae_bench.models.ioi_circuit.model import asset_dir

    recipe = json.loads((asset_dir() / "recipe.json").read_text())
    cfg = TrainConfig(**recipe["train_config"])
    return corpus.sample_documents(n, gen, n_ctx=cfg.n_ctx, mix=corpus_mix(cfg))


def corpus_spec(cfg: TrainConfig) -> tiny_train.CorpusSpec:
    """The corpus the shared loop trains on: `corpus.SIMPLE` documents for the first
    `cfg.simple_steps` steps, then the config's mix at its context length."""
    mix = corpus_mix(cfg)

    def sample(n: int, gen: torch.Generator, step: int | None) -> list[corpus.Document]:
        phase = corpus.SIMPLE if step is not None and step < cfg.simple_steps else mix
        return corpus.sample_documents(n, gen, n_ctx=cfg.n_ctx, mix=phase)

    def vocabulary() -> list[str]:
        return corpus.vocabulary(role_words=cfg.role_words > 0, s_middles=cfg.s_repeats > 0,
                                 self_closings=cfg.self_closings > 0, crowd=cfg.crowd > 0,
                                 varied_pairs=cfg.varied_pairs > 0,
                                 roll_call=cfg.roll_call > 0)

    return tiny_train.CorpusSpec(MODEL_NAME, vocabulary, sample,
                                 extra_loss=iit_loss(cfg) if cfg.iit > 0 else None)


# The last interchange step's accuracy per kind, for the monitor (`monitor` prints it).
IIT_LAST: dict[str, float] = {}


def circuit_map(cfg: TrainConfig) -> interchange.CircuitMap:
    cmap = interchange.CircuitMap(interchange.parse_heads(cfg.iit_dup),
                                  interchange.parse_heads(cfg.iit_inh),
                                  interchange.parse_heads(cfg.iit_nm))
    cmap.check(cfg.n_layers, cfg.n_heads)
    if cfg.iit_attention < 0:
        raise ValueError(f"--iit-attention must be >= 0, not {cfg.iit_attention}")
    if not 0 <= cfg.iit_attention_floor <= 1:
        raise ValueError(f"--iit-attention-floor must be in [0, 1], not {cfg.iit_attention_floor}")
    if cfg.iit_strictness not in interchange.STRICTNESS:
        raise ValueError(f"--iit-strictness must be one of {', '.join(interchange.STRICTNESS)}, "
                         f"not {cfg.iit_strictness!r}")
    return cmap


def iit_loss(cfg: TrainConfig):
    """The interchange loss from step `cfg.iit_from_step` on, times `cfg.iit`."""
    cmap = circuit_map(cfg)

    def extra(model, gen: torch.Generator, step: int) -> torch.Tensor:
        if step < cfg.iit_from_step:
            return torch.zeros(())
        pairs = interchange.sample_pairs(model.tokenizer, cfg.iit_batch, gen,
                                         max_fillers=cfg.max_fillers,
                                         varied_pairs=cfg.varied_pairs,
                                         strictness=cfg.iit_strictness)
        loss, hits = interchange.interchange_loss(model, cmap, pairs, cfg.iit_attention,
                                                  cfg.iit_attention_floor)
        IIT_LAST.clear()
        IIT_LAST.update(hits)
        return cfg.iit * loss

    return extra


def train_raw(cfg: TrainConfig, *, progress: bool = True):
    """(LN model, config dict, tokenizer) trained on ioi-circuit's corpus."""
    return tiny_train.train_raw(cfg, progress=progress, source=corpus_spec(cfg))


def monitor(every: int, n: int = 300):
    """An `on_step` callback printing task accuracy and mean LD every `every` steps (its prompts
    come from the task's own seeded generator, never the training one)."""
    from sae_bench.models.ioi_tiny.evaluate import end_logits
    from sae_bench.tasks import get_task

    start = time.perf_counter()
    data: list = []

    def on_step(step: int, model) -> None:
        if every <= 0 or (step + 1) % every:
            return
        model.eval()
        if not data:
            data.append(get_task("ioi").build(model, n=n, seed=5, split="eval",
                                              counterfactuals=False))
        d = data[0]
        logits = end_logits(model, d.tokens)
        rows = torch.arange(len(logits))
        ld = float((logits[rows, d.answer_ids] - logits[rows, d.distractor_ids]).mean())
        acc = float((logits.argmax(-1) == d.answer_ids).float().mean())
        iit = "".join(f", {k} {v:.2f}" for k, v in IIT_LAST.items())
        print(f"step {step + 1}: {time.perf_counter() - start:.0f} s, task accuracy {acc:.3f}, "
              f"mean LD {ld:.2f}{iit}", flush=True)
        model.train()

    return on_step


def main(argv: list[str] | None = None) -> int:
    args, cfg = tiny_train.parse_recipe_args(
        argv, TrainConfig, "python -m sae_bench.models.ioi_circuit.train", __doc__.split("\n\n")[0])

    from sae_bench.errors import UserError
    from sae_bench.models.ioi_circuit.behaviour import behaviour_metrics, format_behaviour

    try:  # refuse a bad corpus mix or circuit map before training, in one line
        spec = corpus_spec(cfg)
    except ValueError as e:
        raise UserError(f"{e} (see --help for the recipe's flags)") from None

    with tiny_train.fixed_threads(cfg.threads):
        model, config, err, wall = tiny_train.train(
            cfg, progress=not args.no_progress, source=spec,
            on_step=monitor(0 if args.no_progress else 250))
        print(f"trained in {wall:.1f} s; processing changed centred logits by at most "
              + ", ".join(f"{e:.1e} ({dtype})" for dtype, e in err.items()))
        metrics = behaviour_metrics(model, n=cfg.eval_n, seed=cfg.eval_seed)
    print(format_behaviour(metrics))
    recipe: dict[str, Any] = {
        **tiny_train.recipe_header("sae_bench.models.ioi_circuit.train", argv, RETRAIN_COMMAND,
                                   cfg, err, wall),
        "torch_threads": torch.get_num_threads(),
        "versions": tiny_train.library_versions(),
        "held_out_pairs": {"rule": "sae_bench.models.ioi_tiny.corpus.held_out",
                           "fraction": 1 / 5},
        "eval": {"n": cfg.eval_n, "seed": cfg.eval_seed, "metrics": metrics},
    }
    tiny_train.write_assets(args.out, model, config, recipe)
    print(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}")
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.models.ioi_circuit.train"))
