"""IOI quality metrics of a model on the task's own eval prompts (used by the trainer, the model
card and the tests).

accuracy = fraction of prompts whose top-1 token at END is the answer (the IO name);
LD = logit(IO) - logit(S) at END. Held-out pairs: prompts whose unordered (IO, S) pair never
co-occurs in ioi-tiny's training text (`sae_bench.models.ioi_tiny.corpus.held_out`). Counterfactual
sets: after an IO edit the answer is the new IO name; after an S edit or a Pos flip it is still IO.
"""

from __future__ import annotations

import torch

from sae_bench.models.ioi_tiny.corpus import held_out


@torch.no_grad()
def end_logits(model, tokens: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits at the last position. tokens [n, seq] -> [n, d_vocab]."""
    device = next(model.parameters()).device
    out = [model(tokens[i : i + batch_size].to(device))[:, -1].float().cpu()
           for i in range(0, len(tokens), batch_size)]
    return torch.cat(out)


def _summary(logits: torch.Tensor, answer: torch.Tensor, distractor: torch.Tensor,
             mask: torch.Tensor | None = None) -> dict[str, float]:
    """Accuracy and mean LD over the rows selected by `mask` [n] bool (all rows if None)."""
    if mask is not None:
        logits, answer, distractor = logits[mask], answer[mask], distractor[mask]
    rows = torch.arange(len(answer))
    ld = logits[rows, answer] - logits[rows, distractor]
    return {
        "n": len(answer),
        "accuracy": float((logits.argmax(-1) == answer).float().mean()),
        "mean_logit_diff": float(ld.mean()),
    }


def ioi_metrics(model, *, n: int = 5000, seed: int = 0) -> dict[str, dict[str, float]]:
    """{"all", "held_out_pairs", "seen_pairs", "cf_IO", "cf_S", "cf_Pos"} -> {n, accuracy,
    mean_logit_diff}, on `n` eval prompts of the IOI task built with `seed`."""
    from sae_bench.tasks import get_task
    from sae_bench.tasks.ioi.dataset import name_token_ids

    data = get_task("ioi").build(model, n=n, seed=seed, split="eval")
    io, s = data.attributes["IO"].labels, data.attributes["S"].labels
    held = held_out(io, s)
    logits = end_logits(model, data.tokens)
    answer, distractor = data.answer_ids, data.distractor_ids
    metrics = {
        "all": _summary(logits, answer, distractor),
        "held_out_pairs": _summary(logits, answer, distractor, held),
        "seen_pairs": _summary(logits, answer, distractor, ~held),
    }
    ids = name_token_ids(model.tokenizer)
    for attr, cf in data.counterfactuals.items():
        cf_logits = end_logits(model, cf.tokens)
        if attr == "IO":  # the new IO name is the answer; the (unchanged) S the distractor
            metrics["cf_IO"] = _summary(cf_logits, ids[cf.target], distractor)
        elif attr == "S":  # IO still the answer; the new S the distractor
            metrics["cf_S"] = _summary(cf_logits, answer, ids[cf.target])
        else:  # a Pos flip keeps both names
            metrics[f"cf_{attr}"] = _summary(cf_logits, answer, distractor)
    return metrics


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    return "\n".join(
        f"{k:>15}: n={v['n']:5d}  accuracy={v['accuracy']:.4f}  "
        f"mean LD={v['mean_logit_diff']:.3f}"
        for k, v in metrics.items()
    )
