"""Recipe that trains ioi-tiny from scratch on CPU and writes the shipped assets.

    python -m sae_bench.models.ioi_tiny.train --out sae_bench/assets/ioi_tiny --seed 0

Deterministic: one `torch.Generator` seeded with `--seed` draws the initial weights and every
training document, and the thread count is fixed, so the same seed gives bit-identical weights on
the same CPU build of torch. Writes config.json, model.safetensors (processed weights),
tokenizer.json and recipe.json (hyper-parameters, versions, wall time, measured metrics).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sae_bench.fileio.atomic import write_bytes_atomic, write_text_atomic
from sae_bench.models.ioi_tiny import corpus
from sae_bench.models.ioi_tiny.model import (
    RETRAIN_COMMAND,
    check_processing,
    make_config,
    parameters_only,
    process,
)
from sae_bench.models.ioi_tiny.tokenizer import build_tokenizer, save_tokenizer


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe (recorded in recipe.json)."""

    seed: int = 0
    n_layers: int = 3
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    # No MLPs: a name can then reach the last position only through a head that attends it.
    attn_only: bool = False
    n_ctx: int = 32
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 100
    final_lr_fraction: float = 0.05  # cosine decay from lr to lr * this
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # The IO token carries the task; the rest of a document is mostly unpredictable names.
    answer_weight: float = 4.0
    init_std: float = 0.02
    # Fixed, because CPU reductions can depend on the thread count; 1, because on a busy 2-core
    # machine a step with 2 torch threads was measured more than 10x slower than with 1.
    threads: int = 1
    eval_n: int = 5000
    eval_seed: int = 0


@dataclass(frozen=True)
class CorpusSpec:
    """What the training loop needs from a model's corpus, so ioi-tiny and ioi-circuit share one
    loop: the model's name, its closed vocabulary, and a document sampler `sample(n, gen, step)`
    drawing only from `gen` (documents have `text` and `answer_starts`; `step` lets a corpus
    follow a curriculum, None means the final distribution), and optionally `extra_loss(model,
    gen, step)`, a loss added to the language-modelling one at every step (drawing only from
    `gen`, after the step's documents)."""

    model_name: str
    vocabulary: Callable[[], list[str]]
    sample: Callable[[int, torch.Generator, int | None], Sequence[Any]]
    extra_loss: Callable[[Any, torch.Generator, int], torch.Tensor] | None = None


def _tiny_sample(n: int, gen: torch.Generator, step: int | None) -> list[corpus.Document]:
    return corpus.sample_documents(n, gen)  # no curriculum


TINY_CORPUS = CorpusSpec("ioi-tiny", corpus.vocabulary, _tiny_sample)


def init_weights_(model, gen: torch.Generator, std: float) -> None:
    """GPT-2-style initialisation from `gen`: N(0, std) matrices, zero biases, unit LN gains."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "w" and ".ln" in f".{name}":  # LayerNorm gain
                p.fill_(1.0)
            elif leaf.startswith("b"):  # b, b_Q, b_in, b_U, ...
                p.zero_()
            else:
                p.normal_(0.0, std, generator=gen)


def make_batch(tokenizer, docs: Sequence[Any], answer_weight: float):
    """Token ids and per-target loss weights for a batch of documents.

    Returns tokens [b, L] (<bos> text <eos>, right-padded with <pad>) and weights [b, L-1] for the
    targets tokens[:, 1:]: 0 on padding, `answer_weight` on each IO answer
    (`doc.answer_starts`), 1 elsewhere.
    """
    enc = tokenizer([d.text for d in docs], add_special_tokens=False,
                    return_offsets_mapping=True)
    seqs = [[tokenizer.bos_token_id, *ids, tokenizer.eos_token_id] for ids in enc["input_ids"]]
    length = max(map(len, seqs))
    tokens = torch.full((len(seqs), length), tokenizer.pad_token_id, dtype=torch.long)
    weights = torch.zeros(len(seqs), length - 1)
    for i, (seq, offsets, doc) in enumerate(zip(seqs, enc["offset_mapping"], docs, strict=True)):
        tokens[i, : len(seq)] = torch.tensor(seq)
        weights[i, : len(seq) - 1] = 1.0
        for start in doc.answer_starts:
            # +1 for <bos>; target t predicts tokens[t + 1], so the answer's target index is t.
            t = next(t for t, (a, b) in enumerate(offsets) if a <= start < b)
            weights[i, t] = answer_weight
    return tokens, weights


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to `final_lr_fraction * lr`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    low = cfg.final_lr_fraction
    return cfg.lr * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_raw(cfg: TrainConfig, *, progress: bool = True, source: CorpusSpec = TINY_CORPUS,
              on_step: Callable[[int, Any], None] | None = None):
    """Train an LN model on `cfg.threads` threads on `source`'s documents.

    `on_step(step, model)` is called after every optimiser step (for monitoring; it must not
    touch the training generator). Returns (model, its config dict, tokenizer)."""
    with fixed_threads(cfg.threads):
        return _train_raw(cfg, progress, source, on_step)


def _train_raw(cfg: TrainConfig, progress: bool, source: CorpusSpec, on_step):
    from tqdm.auto import tqdm

    from sae_bench.models.ioi_tiny.model import build

    tokenizer = build_tokenizer(source.vocabulary(), name=source.model_name)
    config = make_config(len(tokenizer), n_layers=cfg.n_layers, d_model=cfg.d_model,
                         n_heads=cfg.n_heads, d_mlp=cfg.d_mlp, n_ctx=cfg.n_ctx,
                         model_name=source.model_name, attn_only=cfg.attn_only)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build(config, tokenizer=tokenizer)
    init_weights_(model, gen, cfg.init_std)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.98),
    )
    bar = tqdm(range(cfg.steps), desc=source.model_name, disable=not progress, mininterval=1.0)
    for step in bar:
        tokens, weights = make_batch(tokenizer, source.sample(cfg.batch_size, gen, step),
                                     cfg.answer_weight)
        if tokens.shape[1] > cfg.n_ctx:
            raise ValueError(f"a document has {tokens.shape[1]} tokens > n_ctx={cfg.n_ctx}")
        logits = model(tokens[:, :-1])  # [b, L-1, d_vocab]
        nll = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
        loss = (nll * weights.flatten()).sum() / weights.sum()
        if source.extra_loss is not None:
            loss = loss + source.extra_loss(model, gen, step)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if step % 50 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, cfg):.1e}")
        if on_step is not None:
            on_step(step, model)
    return model.eval(), config, tokenizer


# Max change of centred logits allowed by weight processing, relative to the largest centred
# logit. Float32 processing (TransformerLens) of ioi-tiny, whose logits reach about +-25, moves
# them by ~1e-4 (7e-5 for the shipped model): ~4e-6 of the scale. The bound leaves five times
# that; a real processing bug (a fold done twice, a missing bias) moves logits by whole units.
PROCESSING_RTOL = 2e-5


def train(cfg: TrainConfig, *, progress: bool = True, source: CorpusSpec = TINY_CORPUS,
          on_step: Callable[[int, Any], None] | None = None):
    """Train, then process the weights. Returns (processed model, processed config, max centred
    logit change by processing evaluated in float64 and float32, wall seconds of training)."""
    with fixed_threads(cfg.threads):  # processing (SVDs) also depends on the thread count
        start = time.perf_counter()
        trained, config, tokenizer = train_raw(cfg, progress=progress, source=source,
                                               on_step=on_step)
        wall = time.perf_counter() - start
        processed, processed_config = process(trained, config)
        docs = source.sample(256, torch.Generator().manual_seed(cfg.seed + 1), None)
        tokens = make_batch(tokenizer, docs, 1.0)[0]
        # Asserted in float64, where only the processing's own rounding remains; the float32
        # figure adds both forward passes' arithmetic noise on top, so it is recorded, not
        # asserted (a bound on it would reject a model for the forward pass's rounding).
        err = {str(dtype).removeprefix("torch."):
               check_processing(trained, processed, tokens, dtype=dtype,
                                rtol=PROCESSING_RTOL if dtype == torch.float64 else None)
               for dtype in (torch.float64, torch.float32)}
    return processed, processed_config, err, wall


@contextmanager
def fixed_threads(n: int):
    """Run torch on `n` CPU threads, restoring the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_assets(out: Path, model, config: dict[str, Any], recipe: dict[str, Any]) -> None:
    """The four asset files: config.json, model.safetensors, tokenizer.json, recipe.json."""
    from safetensors.torch import save

    write_text_atomic(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_bytes_atomic(out / "model.safetensors", save(parameters_only(model)))
    save_tokenizer(model.tokenizer, out / "tokenizer.json")
    write_text_atomic(out / "recipe.json", json.dumps(recipe, indent=2) + "\n")


def _flag_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_recipe_args(argv: list[str] | None, config_cls: type, prog: str, description: str):
    """(args, config) from the command line: `--out`, `--no-progress` and one flag per field of
    the dataclass `config_cls` (defaults from the class)."""
    defaults = config_cls()
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--out", type=Path, required=True, help="folder for the assets")
    for f in dataclasses.fields(config_cls):
        default = getattr(defaults, f.name)
        # argparse's type=bool would read "false" as True.
        kind = _flag_bool if isinstance(default, bool) else type(default)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})
    return args, cfg


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    import tokenizers

    return {"torch": torch.__version__, "transformer_lens": version("transformer-lens"),
            "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]}


def recipe_header(module: str, argv: list[str] | None, canonical: str, cfg: Any,
                  err: dict[str, float], wall: float) -> dict[str, Any]:
    """The first fields of a shipped model's recipe.json, shared by every recipe built on this
    trainer: how it was run, its config, and what the weight processing changed."""
    return {
        "command": f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv),
        "canonical_command": canonical,
        "train_config": dataclasses.asdict(cfg),
        "processing": "fold_ln, center_writing_weights, center_unembed, "
                      "refactor_factored_attn_matrices (TransformerLens)",
        "processing_max_centred_logit_error": err,
        "train_wall_seconds": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_recipe_args(argv, TrainConfig, "python -m sae_bench.models.ioi_tiny.train",
                                  __doc__.split("\n\n")[0])

    from sae_bench.models.ioi_tiny.evaluate import format_metrics, ioi_metrics
    from sae_bench.tasks import get_task

    with fixed_threads(cfg.threads):
        model, config, err, wall = train(cfg, progress=not args.no_progress)
        print(f"trained in {wall:.1f} s; processing changed centred logits by at most "
              + ", ".join(f"{e:.1e} ({dtype})" for dtype, e in err.items()))
        metrics = ioi_metrics(model, n=cfg.eval_n, seed=cfg.eval_seed)
    print(format_metrics(metrics))
    recipe = {
        **recipe_header("sae_bench.models.ioi_tiny.train", argv, RETRAIN_COMMAND, cfg, err, wall),
        "versions": library_versions(),
        "held_out_pairs": {"rule": "sae_bench.models.ioi_tiny.corpus.held_out",
                           "fraction": 1 / corpus.HELD_OUT_MODULUS},
        "eval": {"task": "ioi", "task_version": get_task("ioi").version, "split": "eval",
                 "n": cfg.eval_n, "seed": cfg.eval_seed, "metrics": metrics},
    }
    write_assets(args.out, model, config, recipe)
    print(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}")
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.models.ioi_tiny.train"))
