"""Finding and checking the IOI circuit of a model on the task's prompts (all roles at fixed
positions per prompt): per-head attention, direct logit attribution, head classes, the effect of
patching S-inhibition heads on the name movers' attention, and IO/S separability at the name
movers' output, queries and keys and at the S-inhibition output (`--attention-mixes`: also at the
name movers' output with their attention set by hand).

    python -m sae_bench.models.ioi_circuit.circuit [--model ioi-circuit] [--n 1000]

prints every table the model card quotes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

Head = tuple[int, int]

# Thresholds of the floors (name movers) and of the attention-based classes (ours).
NM_IO_MIN, NM_S_MAX = 0.6, 0.1
SI_S2_MIN, DT_S1_MIN, IND_S1P1_MIN = 0.3, 0.3, 0.3


@dataclass(frozen=True)
class HeadStats:
    """Mean attention of one head from END to IO / S1 / S2, and from S2 to S1 / S1+1; `dla`: its
    direct contribution to the logit difference at END (through the final LN's scale)."""

    end_io: float
    end_s1: float
    end_s2: float
    s2_s1: float
    s2_s1p1: float
    dla: float


@torch.no_grad()
def head_stats(model, data, batch_size: int = 250) -> dict[Head, HeadStats]:
    """Per-head statistics on a task `TaskData` (prompts of equal length)."""
    L, H = model.cfg.n_layers, model.cfg.n_heads
    sums = torch.zeros(L, H, 6, dtype=torch.float64)
    pos = data.positions
    w_u = model.W_U
    for i in range(0, len(data.tokens), batch_size):
        sl = slice(i, i + batch_size)
        _, cache = model.run_with_cache(
            data.tokens[sl],
            names_filter=lambda n: n.endswith(("hook_pattern", "hook_z", "final.hook_scale")))
        rows = torch.arange(len(data.tokens[sl]))
        end, io, s1, s2 = (pos[r][sl] for r in ("END", "IO", "S1", "S2"))
        direction = w_u[:, data.answer_ids[sl]] - w_u[:, data.distractor_ids[sl]]  # [d, b]
        # A model without a final LayerNorm (ioi-planted) reads the residual stream unscaled.
        scale = (cache["ln_final.hook_scale"][rows, end, 0] if "ln_final.hook_scale" in cache
                 else torch.ones(len(rows)))  # [b]
        for layer in range(L):
            p = cache[f"blocks.{layer}.attn.hook_pattern"]  # [b, head, q, k]
            z = cache[f"blocks.{layer}.attn.hook_z"][rows, end]  # [b, head, d_head]
            out = torch.einsum("bhd,hdm->bhm", z, model.W_O[layer])  # [b, head, d_model]
            dla = torch.einsum("bhm,mb->bh", out, direction) / scale[:, None]
            for j, (q, k) in enumerate(((end, io), (end, s1), (end, s2), (s2, s1), (s2, s1 + 1))):
                sums[layer, :, j] += p[rows, :, q, k].sum(0).double()
            sums[layer, :, 5] += dla.sum(0).double()
    means = sums / len(data.tokens)
    return {(layer, h): HeadStats(*(float(v) for v in means[layer, h]))
            for layer in range(L) for h in range(H)}


def classify(stats: dict[Head, HeadStats]) -> dict[str, tuple[Head, ...]]:
    """Head classes by attention and direct effect (GPT-2's classes, Wang et al. 2022)."""
    nm = tuple(h for h, s in stats.items()
               if s.end_io >= NM_IO_MIN and s.end_s1 + s.end_s2 <= NM_S_MAX and s.dla > 0)
    si = tuple(h for h, s in stats.items() if s.end_s2 >= SI_S2_MIN and h not in nm)
    dt = tuple(h for h, s in stats.items() if s.s2_s1 >= DT_S1_MIN)
    ind = tuple(h for h, s in stats.items() if s.s2_s1p1 >= IND_S1P1_MIN)
    return {"name_mover": nm, "s_inhibition": si, "duplicate_token": dt, "induction": ind}


@torch.no_grad()
def nm_attention_under_patch(model, data, nm: tuple[Head, ...], patched: tuple[Head, ...],
                             source: str) -> tuple[float, float]:
    """Mean attention of the name movers from END to (IO, S1) when the heads `patched` have their
    output at END replaced: ``source`` = "mean" (mean over prompts), "clean", or a counterfactual
    attribute ("S", "Pos", "IO") whose prompt's output is patched in."""
    pos = data.positions
    rows = torch.arange(len(data.tokens))
    layers = sorted({layer for layer, _ in patched})

    def z_at_end(tokens, end) -> dict[int, torch.Tensor]:
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_z"))
        return {layer: cache[f"blocks.{layer}.attn.hook_z"][rows, end] for layer in layers}

    if source == "clean":
        values = None
    elif source == "mean":
        values = {k: v.mean(0, keepdim=True).expand_as(v) for k, v in
                  z_at_end(data.tokens, pos["END"]).items()}
    else:
        cf = data.counterfactuals[source]
        values = z_at_end(cf.tokens, cf.positions["END"])

    def hook(act, hook):
        layer = int(hook.name.split(".")[1])
        for lay, h in patched:
            if lay == layer:
                act[rows, pos["END"], h] = values[layer][:, h]
        return act

    hooks = [] if values is None else [(f"blocks.{layer}.attn.hook_z", hook) for layer in layers]
    store: dict[str, torch.Tensor] = {}

    def keep(act, hook):
        store[hook.name] = act

    hooks += [(f"blocks.{layer}.attn.hook_pattern", keep) for layer in {lay for lay, _ in nm}]
    model.run_with_hooks(data.tokens, fwd_hooks=hooks)
    io = torch.stack([store[f"blocks.{lay}.attn.hook_pattern"][rows, h, pos["END"], pos["IO"]]
                      for lay, h in nm]).mean()
    s1 = torch.stack([store[f"blocks.{lay}.attn.hook_pattern"][rows, h, pos["END"], pos["S1"]]
                      for lay, h in nm]).mean()
    return float(io), float(s1)


def separability(fit_acts: torch.Tensor, fit_data, eval_acts: torch.Tensor,
                 eval_data) -> dict[str, float]:
    """IO/S separability at a node: mean cosine between the supervised features u_IO,v and u_S,v
    over names (mean dictionary, fit prompts) and held-out linear-probe accuracy for each."""
    from sae_bench.axes.occlusion import linear_decodability
    from sae_bench.truth.dictionaries import fit

    labels = {k: fit_data.attributes[k].labels for k in ("IO", "S")}
    n_values = {k: len(fit_data.attributes[k].values) for k in labels}
    d = fit(fit_acts, labels, n_values)
    both = d.present["IO"] & d.present["S"]
    cos = torch.nn.functional.cosine_similarity(d.features["IO"][both], d.features["S"][both], -1)
    out = {"cosine_io_s": float(cos.mean())}
    for k in ("IO", "S"):
        out[f"probe_{k}"] = linear_decodability(fit_acts, labels[k], eval_acts,
                                                eval_data.attributes[k].labels, n_values[k])
    return out


# Attention mixes `nm_output_under_attention` sets the name movers to (role -> share from END;
# the rest goes to <bos>). The first is the floor's corner (IO at its least, S at its most); the
# others let S in past the floor, or route attention to END, where the S-inhibition heads have
# written S.
ATTENTION_MIXES = (
    {"IO": 0.6, "S1": 0.05, "S2": 0.05},
    {"IO": 0.6, "S1": 0.1, "S2": 0.1},
    {"IO": 0.6, "S1": 0.2, "S2": 0.2},
    {"IO": 0.6, "END": 0.3, "S1": 0.05, "S2": 0.05},
    {"IO": 0.6, "END": 0.4},
)


@torch.no_grad()
def nm_output_under_attention(model, data, nm: tuple[Head, ...], shares: dict[str, float]
                              ) -> torch.Tensor:
    """The name movers' hook_z at END [n, len(nm), d_head] when each one's attention from END is
    set to `shares` (role of `data.positions` -> share) and the rest of it to <bos> (position 0),
    all else unchanged. <bos>'s value is the same in every prompt, so its share shifts every
    activation alike and changes neither mean features nor probes: what is left is what the
    heads would carry at that attention, with the values they have."""
    if sum(shares.values()) > 1 or min(shares.values()) < 0:
        raise ValueError(f"attention shares must be >= 0 and sum to at most 1: {shares}")
    pos = data.positions
    rows = torch.arange(len(data.tokens))
    end = pos["END"]
    layers = sorted({layer for layer, _ in nm})

    def set_pattern(pattern, hook):
        layer = int(hook.name.split(".")[1])
        new = torch.zeros_like(pattern[rows, 0, end])  # [n, k]
        new[:, 0] = 1 - sum(shares.values())
        for role, share in shares.items():
            new[rows, pos[role]] += share
        for lay, h in nm:
            if lay == layer:
                pattern[rows, h, end] = new
        return pattern

    store: dict[int, torch.Tensor] = {}

    def keep(z, hook):
        store[int(hook.name.split(".")[1])] = z[rows, end]

    model.run_with_hooks(data.tokens, fwd_hooks=[
        *((f"blocks.{layer}.attn.hook_pattern", set_pattern) for layer in layers),
        *((f"blocks.{layer}.attn.hook_z", keep) for layer in layers)])
    return torch.stack([store[layer][:, h] for layer, h in nm], dim=1)


@torch.no_grad()
def cross_section_effects(model, data, cross_sections) -> dict[str, dict[str, tuple[float, float]]]:
    """{cross-section: {attribute: (share of prompts whose top-1 changes, LD drop / clean LD)}}
    when every node of the cross-section is patched with the counterfactual prompt's values."""
    from sae_bench.engine.patching import collect_activations
    from sae_bench.engine.runner import InterventionRunner

    runner = InterventionRunner(model, data.tokens, data.positions, data.answer_ids,
                                data.distractor_ids)
    clean = runner.clean()
    ld = float(clean.logit_diff.mean())
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for cs in cross_sections:
        out[cs.name] = {}
        for attr, cf in data.counterfactuals.items():
            acts = collect_activations(model, cf.tokens, cf.positions, list(cs.nodes))
            run = runner.run(acts, argmax=True)
            assert run.argmax is not None and clean.argmax is not None
            out[cs.name][attr] = (float((run.argmax != clean.argmax).float().mean()),
                                  (ld - float(run.logit_diff.mean())) / ld)
    return out


def model_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The diagnostics' shared options: `--model NAME` or `--assets DIR` (a model folder written
    by ioi-circuit's recipe), `--n`, `--seed`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", default="ioi-circuit")
    parser.add_argument("--assets", default=None,
                        help="load an ioi-circuit-format model from this folder instead")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def load_diagnosed_model(args: argparse.Namespace):
    """The model `model_parser`'s options name, on one torch thread."""
    from pathlib import Path

    from sae_bench.models.ioi_circuit.model import load_from
    from sae_bench.models.registry import load_model

    torch.set_num_threads(1)
    return load_from(Path(args.assets)) if args.assets else load_model(args.model)


def diagnosed_model(module: str, doc: str, argv: list[str] | None, *, n: int, seed: int):
    """(args, model) for a diagnostic `python -m sae_bench.models.ioi_circuit.<module>` with only
    `model_parser`'s options, defaulting to `n` prompts and `seed`."""
    parser = model_parser(f"python -m sae_bench.models.ioi_circuit.{module}", doc.split("\n\n")[0])
    parser.set_defaults(n=n, seed=seed)
    args = parser.parse_args(argv)
    return args, load_diagnosed_model(args)


def main(argv: list[str] | None = None) -> int:
    parser = model_parser("python -m sae_bench.models.ioi_circuit.circuit",
                          __doc__.split("\n\n")[0])
    parser.add_argument("--n-fit", type=int, default=5000)
    parser.add_argument("--attention-mixes", action="store_true",
                        help="also score IO/S separability at the name movers' output with "
                             "their attention set to each of ATTENTION_MIXES")
    args = parser.parse_args(argv)

    from sae_bench.models.nodes import Node
    from sae_bench.tasks import get_task

    model = load_diagnosed_model(args)
    task = get_task("ioi")
    data = task.build(model, n=args.n, seed=args.seed, split="eval")
    stats = head_stats(model, data)
    print("head   END->IO END->S1 END->S2  S2->S1 S2->S1+1    DLA")
    for (layer, h), s in stats.items():
        print(f"{layer}.{h:<4} {s.end_io:7.2f} {s.end_s1:7.2f} {s.end_s2:7.2f} {s.s2_s1:7.2f} "
              f"{s.s2_s1p1:8.2f} {s.dla:7.2f}")
    classes = classify(stats)
    for name, heads in classes.items():
        print(f"{name}: {', '.join(f'{a}.{b}' for a, b in heads) or '-'}")
    nm, si = classes["name_mover"], classes["s_inhibition"]
    if nm and si:
        print("name movers' attention END->(IO, S1) when the S-inhibition heads' output is:")
        for source in ("clean", "mean", "S", "Pos"):
            io, s1 = nm_attention_under_patch(model, data, nm, si, source)
            print(f"  {source:>5}: IO {io:.3f}  S1 {s1:.3f}")
    from sae_bench.tasks.ioi.circuits import paper_cross_sections

    if nm and si:
        css = paper_cross_sections(nm, si, classes["induction"] + classes["duplicate_token"])
        css = [cs for cs in css if cs.nodes]
        print("cross-section patch (counterfactual values into every node): top-1 changed / "
              "LD drop as a share of clean")
        for name, row in cross_section_effects(model, data, css).items():
            cells = (f"{a} {t:.2f} {d:+.2f}" for a, (t, d) in row.items())
            print(f"  {name:>12}: " + "  ".join(cells))
    if nm:
        fit_data = task.build(model, n=args.n_fit, seed=args.seed, split="fit",
                              counterfactuals=False)
        from sae_bench.engine.patching import collect_activations

        # The name movers' output (the issue's floor), then where the paper places IO and S
        # together (name-mover queries and keys, Makelov et al. 2024, A.3) and the S-inhibition
        # output that carries S to END.
        nodes = [Node(f"blocks.{a}.attn.{hook}", role, b) for hook, role in
                 (("hook_z", "END"), ("hook_q", "END"), ("hook_k", "IO"), ("hook_k", "S1"))
                 for a, b in nm]
        nodes += [Node(f"blocks.{a}.attn.hook_z", "END", b) for a, b in si]
        print("IO and S as variables (mean features on the fit prompts, probes scored on the "
              "eval prompts):")
        fit_acts = collect_activations(model, fit_data.tokens, fit_data.positions, nodes)
        eval_acts = collect_activations(model, data.tokens, data.positions, nodes)
        for node in nodes:
            sep = separability(fit_acts[node], fit_data, eval_acts[node], data)
            print(f"  {node.name}: " + "  ".join(f"{k} {v:.3f}" for k, v in sep.items()))
        if args.attention_mixes:
            print("the name movers' output with their attention from END set by hand "
                  "(the rest on <bos>):")
            for shares in ATTENTION_MIXES:
                fz = nm_output_under_attention(model, fit_data, nm, shares)
                ez = nm_output_under_attention(model, data, nm, shares)
                mix = " ".join(f"{role} {share:g}" for role, share in shares.items())
                for i, (a, b) in enumerate(nm):
                    sep = separability(fz[:, i], fit_data, ez[:, i], data)
                    print(f"  {mix:<28} {a}.{b}: "
                          + "  ".join(f"{k} {v:.3f}" for k, v in sep.items()))
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.models.ioi_circuit.circuit"))
