"""Where does the IO name travel to END? Patch the residual stream at one position after one
layer from the IO-counterfactual prompt (same template and S, another IO name) into the clean
prompt, and count the prompts whose top-1 at END becomes the counterfactual's IO.

A position that carries the IO name on its way to END flips the answer; one that does not, or
that shares the load with other positions, does not. GPT-2's route (and ioi-planted's): IO's own
position until the name movers read it, then END.

    python -m sae_bench.models.ioi_circuit.io_route [--model NAME | --assets DIR] [--n 300]

also patches two spans whole (BOS to S2, S2 to END: a name spread over several positions moves
with its span), prints each head's mean attention from END to the single positions and the
token before END, and each head's most attended token from END on the first three prompts.
"""

from __future__ import annotations

import torch

# (role, offset) positions patched one at a time, besides END.
POSITIONS = (("IO", 0), ("IO", 1), ("S1", 0), ("S1", 1), ("S2", 0), ("S2", 1), ("S2", 2),
             ("END", 0))


@torch.no_grad()
def io_route(model, data) -> dict[tuple[str, int], list[float]]:
    """{(role, offset): [share of prompts answering the counterfactual IO, per layer]} for
    residual-stream patches after each layer at that position, over the prompts where that
    position is not END (in one of the task's templates S2+2 is END). `data`: the task's eval
    `TaskData` with an IO counterfactual (prompts of one length per template)."""
    cf = data.counterfactuals["IO"]
    rows = torch.arange(len(data.tokens))
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)]
    _, cf_cache = model.run_with_cache(cf.tokens, names_filter=lambda n: n in hooks)
    # The counterfactual's answer is its IO name: the clean answer's token with IO edited.
    cf_answer = model.run_with_hooks(cf.tokens)[rows, cf.positions["END"]].argmax(-1)
    end = data.positions["END"]
    out: dict[tuple[str, int], list[float]] = {}
    for role, offset in POSITIONS:
        pos, cf_pos = data.positions[role] + offset, cf.positions[role] + offset
        counted = (pos != end) if role != "END" else torch.ones_like(pos, dtype=torch.bool)
        shares = []
        for hook in hooks:
            def patch(act, hook, hook_name=hook, pos=pos, cf_pos=cf_pos):
                act = act.clone()
                act[rows, pos] = cf_cache[hook_name][rows, cf_pos]
                return act

            top = model.run_with_hooks(data.tokens, fwd_hooks=[(hook, patch)])[rows, end]
            hit = (top.argmax(-1) == cf_answer)[counted]
            shares.append(float(hit.float().mean()) if len(hit) else float("nan"))
        out[(role, offset)] = shares
    return out


# Spans patched whole, [start, stop) by (role, offset): a name that travels through several
# positions at once (so that no single one flips the answer) still moves with its span.
REGIONS = {"up to S2": (("IO", -10**6), ("S2", 0)), "S2 to END": (("S2", 0), ("END", 0))}


@torch.no_grad()
def io_route_regions(model, data) -> dict[str, list[float]]:
    """{region: [share of prompts answering the counterfactual IO, per layer]}, patching every
    position of a `REGIONS` span (BOS excluded; clipped to the prompt) after each layer."""
    cf = data.counterfactuals["IO"]
    # Same template, one token per name: the counterfactual's positions are the clean ones.
    assert all(torch.equal(cf.positions[r], data.positions[r]) for r in ("S2", "END"))
    rows = torch.arange(len(data.tokens))
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)]
    _, cf_cache = model.run_with_cache(cf.tokens, names_filter=lambda n: n in hooks)
    cf_answer = model.run_with_hooks(cf.tokens)[rows, cf.positions["END"]].argmax(-1)
    end = data.positions["END"]
    index = torch.arange(data.tokens.shape[1])
    out: dict[str, list[float]] = {}
    for name, ((r0, o0), (r1, o1)) in REGIONS.items():
        start = (data.positions[r0] + o0).clamp(min=1)  # keep BOS: every prompt shares it
        stop = data.positions[r1] + o1
        mask = (index >= start[:, None]) & (index < stop[:, None])  # [b, seq]
        shares = []
        for hook in hooks:
            def patch(act, hook, hook_name=hook, mask=mask):
                return torch.where(mask[..., None].to(act.device), cf_cache[hook_name], act)

            top = model.run_with_hooks(data.tokens, fwd_hooks=[(hook, patch)])[rows, end]
            shares.append(float((top.argmax(-1) == cf_answer).float().mean()))
        out[name] = shares
    return out


# Where heads at END look: the patched positions, and the token before END.
ATTENDED = (*POSITIONS[:-1], ("END", -1))


@torch.no_grad()
def end_attention(model, data) -> dict[tuple[int, int], dict[tuple[str, int], float]]:
    """{(layer, head): {(role, offset): mean attention from END}} over `ATTENDED`, on the
    prompts where that position is not END. It shows what a head reads when it attends
    neither name itself: run c2 of the model card moves IO to END through layer-1 heads
    attending the tokens after IO and S1, which hold those names after layer 0."""
    rows = torch.arange(len(data.tokens))
    _, cache = model.run_with_cache(data.tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    end = data.positions["END"]
    out: dict[tuple[int, int], dict[tuple[str, int], float]] = {}
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][rows, :, end]  # [b, head, k]
        for head in range(model.cfg.n_heads):
            out[(layer, head)] = {}
            for role, offset in ATTENDED:
                pos = data.positions[role] + offset
                counted = pos != end
                values = pattern[rows, head, pos.clamp(max=pattern.shape[-1] - 1)][counted]
                out[(layer, head)][(role, offset)] = float(values.mean())
    return out


@torch.no_grad()
def most_attended(model, data, n_prompts: int = 3
                  ) -> dict[tuple[int, int], list[tuple[str, float]]]:
    """{(layer, head): [(token, attention) most attended from END, one per prompt]} on the
    first `n_prompts` prompts: where a head looks when it attends none of `ATTENDED` (runs
    r17 and r18 of the model card read the opening's full stop)."""
    tokens = data.tokens[:n_prompts]
    rows = torch.arange(len(tokens))
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    end = data.positions["END"][:n_prompts]
    out: dict[tuple[int, int], list[tuple[str, float]]] = {}
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][rows, :, end]  # [b, head, k]
        weight, where = pattern.max(-1)
        for head in range(model.cfg.n_heads):
            out[(layer, head)] = [
                (model.to_single_str_token(int(tokens[i, where[i, head]])),
                 float(weight[i, head])) for i in range(len(tokens))]
    return out


def _label(role: str, offset: int) -> str:
    return role if offset == 0 else f"{role}{offset:+d}"


def main(argv: list[str] | None = None) -> int:
    from sae_bench.models.ioi_circuit.circuit import diagnosed_model
    from sae_bench.tasks import get_task

    args, model = diagnosed_model("io_route", __doc__, argv, n=300, seed=3)
    data = get_task("ioi").build(model, n=args.n, seed=args.seed, split="eval")
    print("share of prompts answering the IO counterfactual's name, patching the residual "
          "stream at one position after layer L")
    for (role, offset), shares in io_route(model, data).items():
        print(f"{_label(role, offset):>6}: "
              + " ".join(f"L{i} {v:.2f}" for i, v in enumerate(shares)))
    print("\nthe same, patching every position of a span at once")
    for name, shares in io_route_regions(model, data).items():
        print(f"{name:>9}: " + " ".join(f"L{i} {v:.2f}" for i, v in enumerate(shares)))
    print("\nmean attention from END, per head")
    print("head " + "".join(f"{_label(r, o):>7}" for r, o in ATTENDED))
    for (layer, head), row in end_attention(model, data).items():
        print(f"{layer}.{head:<3}" + "".join(f"{v:7.2f}" for v in row.values()))
    print("\nmost attended token from END, per head, on the first prompts")
    for (layer, head), tops in most_attended(model, data).items():
        print(f"{layer}.{head:<3}" + "".join(f"{tok!r:>12} {w:.2f}" for tok, w in tops))
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.models.ioi_circuit.io_route"))
