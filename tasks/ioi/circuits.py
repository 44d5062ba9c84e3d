"""Where IOI lives in each supported model: head classes, nodes and cross-sections.

GPT-2 Small: the circuit of Wang et al. (2022), cross-sections as in Makelov et al. (2024).
ioi-tiny: found by activation patching; ioi-circuit: trained in and checked by patching; the
evidence is in tasks/ioi/README.md.
"""

from __future__ import annotations

from sae_bench.models.nodes import CrossSection, Node

# (layer, head) per head class, GPT-2 Small.
GPT2_HEADS = {
    "name_mover": ((9, 9), (9, 6), (10, 0)),
    "backup_name_mover": (
        (9, 0), (9, 7), (10, 1), (10, 2), (10, 6), (10, 10), (11, 2), (11, 9),
    ),
    "s_inhibition": ((7, 3), (7, 9), (8, 6), (8, 10)),
    "induction": ((5, 5), (5, 8), (5, 9), (6, 9)),
    "duplicate_token": ((0, 1), (0, 10), (3, 0)),
}


def _heads(hook: str, heads, role: str) -> tuple[Node, ...]:
    return tuple(Node(f"blocks.{layer}.attn.{hook}", role, head) for layer, head in heads)


def gpt2_cross_sections() -> list[CrossSection]:
    return paper_cross_sections(
        GPT2_HEADS["name_mover"] + GPT2_HEADS["backup_name_mover"],
        GPT2_HEADS["s_inhibition"],
        GPT2_HEADS["induction"] + GPT2_HEADS["duplicate_token"],
    )


def paper_cross_sections(nm, si, ind_dt) -> list[CrossSection]:
    """The six cross-sections of Makelov et al. (2024) over given (layer, head) classes: (backup)
    name movers `nm`, S-inhibition heads `si`, induction and duplicate-token heads `ind_dt`."""
    return [
        CrossSection("bnm_out", _heads("hook_z", nm, "END"), ("IO",),
                     "outputs of the (backup) name movers at END"),
        CrossSection(
            "bnm_qk",
            _heads("hook_q", nm, "END") + _heads("hook_k", nm, "IO") + _heads("hook_k", nm, "S1"),
            ("S", "Pos"),
            "(backup) name mover queries at END and keys at IO and S1",
        ),
        CrossSection("bnm_q", _heads("hook_q", nm, "END"), ("Pos", "IO", "S"),
                     "(backup) name mover queries at END"),
        CrossSection("si_out", _heads("hook_z", si, "END"), ("S", "Pos"),
                     "S-inhibition head outputs at END"),
        CrossSection("si_v", _heads("hook_v", si, "S2"), ("S", "Pos"),
                     "S-inhibition head values at S2"),
        CrossSection("ind_dt_out", _heads("hook_z", ind_dt, "S2"), ("S", "Pos"),
                     "induction and duplicate-token head outputs at S2"),
    ]


def ioi_tiny_cross_sections() -> list[CrossSection]:
    """Found by `sae-bench scan --model ioi-tiny` (evidence in tasks/ioi/README.md): the layer-0
    heads gather the names into END; the layer-1/2 heads at END carry the S information the
    decision needs (mean-ablating them destroys the behaviour)."""
    l0 = tuple((0, h) for h in range(4))
    late = tuple((layer, h) for layer in (1, 2) for h in range(4))
    return [
        CrossSection("resid_l0_end", (Node("blocks.0.hook_resid_post", "END"),),
                     ("IO", "S", "Pos"), "residual stream after layer 0 at END (main)"),
        CrossSection("l0_heads_out", _heads("hook_z", l0, "END"), ("IO", "S", "Pos"),
                     "outputs of the layer-0 name-gathering heads at END"),
        CrossSection("late_heads_out", _heads("hook_z", late, "END"), ("S", "IO", "Pos"),
                     "outputs of the layer-1 and layer-2 heads at END"),
    ]


# ioi-circuit's heads by class: the heads its recipe trains the circuit's nodes into
# (`--iit-dup`, `--iit-inh`, `--iit-nm`), confirmed by its head table and by patching
# (`python -m sae_bench.models.ioi_circuit.circuit`; model card).
CIRCUIT_HEADS = {
    "name_mover": ((3, 0), (3, 1)),
    "s_inhibition": ((2, 0), (2, 1)),
    "duplicate_token": ((1, 0),),
}


def _over_duplicate_token_circuit(heads: dict) -> list[CrossSection]:
    """The paper's six cross-sections over a circuit whose S2 heads are duplicate-token heads
    only (no induction head): ioi-circuit's and ioi-planted's."""
    return paper_cross_sections(heads["name_mover"], heads["s_inhibition"],
                                heads["duplicate_token"])


def ioi_circuit_cross_sections() -> list[CrossSection]:
    """The paper's six cross-sections over ioi-circuit's heads (no induction head)."""
    return _over_duplicate_token_circuit(CIRCUIT_HEADS)


# ioi-planted's heads by class, as set by hand (sae_bench/models/ioi_planted/build.py).
PLANTED_HEADS = {
    "name_mover": ((2, 0), (2, 1)),
    "s_inhibition": ((1, 0), (1, 1)),
    "duplicate_token": ((0, 0),),
}


def ioi_planted_cross_sections() -> list[CrossSection]:
    """The paper's six cross-sections over the hand-set circuit's heads (no induction head)."""
    return _over_duplicate_token_circuit(PLANTED_HEADS)


# Model name -> cross-section factory. gpt2-random shares GPT-2 Small's shape, so its nodes.
_CROSS_SECTIONS = {
    "gpt2": gpt2_cross_sections,
    "gpt2-random": gpt2_cross_sections,
    "ioi-tiny": ioi_tiny_cross_sections,
    "ioi-circuit": ioi_circuit_cross_sections,
    "ioi-planted": ioi_planted_cross_sections,
}


def cross_sections_for(model_name: str) -> list[CrossSection]:
    """The model's cross-sections, its main one first."""
    factory = _CROSS_SECTIONS.get(model_name)
    return factory() if factory else []
