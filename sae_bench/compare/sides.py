"""The two sides of a comparison: an SAE file (any format `load_sae` reads) or the literal
`supervised[:mean|lstsq]`, resolved to one node, then to activations and directions.

A side is, over the eval prompts, a matrix of latent activations [n, L] and one direction per
latent [L, d] in the node's activation space. For an SAE: its encoder's latents and its decoder
rows (in activation space, input scale undone). For the supervised dictionary: one latent per
attribute value seen while fitting, whose "activation" is the indicator of that value on the
prompt (the label, not a decoding of the activation), and whose direction is the feature
u_{i,v}, centred over the values of its attribute (least-squares features are identified only up
to a shift shared by an attribute's values; `axes/supervised_codes.py` centres them too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sae_bench.compare.result import SideInfo
from sae_bench.errors import UserError, unknown_name
from sae_bench.models.nodes import Node
from sae_bench.sae import SAE, SAEBundle, load_sae
from sae_bench.sae.load import with_canonical_sources
from sae_bench.tasks.base import TaskData
from sae_bench.truth.dictionaries import METHODS, SupervisedDictionary

SUPERVISED = "supervised"
DEFAULT_METHOD = "lstsq"  # as `run --comparator`: the paper recommends least-squares dictionaries


@dataclass(frozen=True)
class SideSpec:
    text: str  # as given on the command line
    method: str | None  # supervised fit, or None for an SAE
    sae: SAE | None

    @property
    def label(self) -> str:
        if self.sae is None:
            return f"{SUPERVISED}:{self.method}"
        return self.sae.source_path or self.text


def parse_side(text: str, *, hook: str | None = None,
               input_scale: float | None = None) -> SideSpec:
    """`supervised`, `supervised:METHOD`, or an SAE path (one SAE, not a bundle)."""
    if text == SUPERVISED or text.startswith(f"{SUPERVISED}:"):
        method = text.partition(":")[2] or DEFAULT_METHOD
        if method not in METHODS:
            raise unknown_name("supervised dictionary method", method, METHODS)
        return SideSpec(text, method, None)
    loaded = load_sae(text, hook_name=hook, input_scale=input_scale)
    if isinstance(loaded, SAEBundle):
        raise UserError(f"{text} is a bundle of {len(loaded)} SAEs; compare reads one SAE per "
                        "side at one node: pass the bundle member's own file.")
    sae = with_canonical_sources(loaded, text)
    assert isinstance(sae, SAE)
    return SideSpec(text, None, sae)


def resolve_node(specs: list[SideSpec], node: str | None, position: str | None) -> Node:
    """The one node both sides are read at: `--node`, or the SAEs' hook (and head) at their
    position (`--position` for a file that names none)."""
    wanted = Node.parse(node) if node is not None else None
    found: list[tuple[str, Node]] = []
    for spec in specs:
        sae = spec.sae
        if sae is None:
            continue
        if sae.hook_name is None:
            if wanted is None:
                raise UserError(f"SAE {spec.text} does not say which hook it reads; pass --hook "
                                "or --node HOOK[:HEAD]@ROLE (see `sae-bench nodes`).")
            sae = sae.replace(hook_name=wanted.hook, head=wanted.head)
        role = sae.position or position or (wanted.position if wanted else None)
        if role is None:
            raise UserError(f"SAE {spec.text} does not say at which position it reads; pass "
                            "--position ROLE (e.g. END) or --node HOOK[:HEAD]@ROLE.")
        assert sae.hook_name is not None
        found.append((spec.text, Node(sae.hook_name, role, sae.head)))
    for text, at in found:
        if wanted is not None and at != wanted:
            raise UserError(f"SAE {text} reads {at.name} but --node is {wanted.name}; compare "
                            "dictionaries at the node they read (drop --node or fix it).")
    if len({at for _, at in found}) > 1:
        (ta, na), (tb, nb) = found
        raise UserError(f"the two SAEs read different nodes ({ta}: {na.name}, {tb}: {nb.name}); "
                        "compare reads two dictionaries at one node.")
    if found:
        return found[0][1]
    if wanted is None:
        raise UserError("both sides are supervised dictionaries, which sit at no node of their "
                        "own; pass --node HOOK[:HEAD]@ROLE (see `sae-bench nodes`).")
    return wanted


@dataclass(frozen=True)
class Side:
    info: SideInfo
    activations: Tensor  # [n, L] over the eval prompts
    directions: Tensor  # [L, d]
    names: tuple[str, ...]  # per latent: "latent 17" or "IO=John"


@torch.no_grad()
def sae_side(spec: SideSpec, sae: SAE, acts: Tensor) -> Side:
    latents = sae.encode(acts).float()
    return Side(
        info=SideInfo(spec=spec.label, kind="sae", method=None, architecture=sae.architecture,
                      format=sae.format, sha256=sae.sha256, n_latents=sae.d_sae,
                      n_alive=int((latents.double().std(0) > 0).sum())),
        activations=latents,
        directions=sae.decoder_directions().float(),
        names=tuple(f"latent {j}" for j in range(sae.d_sae)),
    )


def supervised_side(spec: SideSpec, dictionary: SupervisedDictionary, data: TaskData) -> Side:
    acts, dirs, names = [], [], []
    for attr, features in dictionary.features.items():
        present = dictionary.present[attr]
        centred = features.double() - features.double()[present].mean(0)
        attribute = data.attributes[attr]
        onehot = torch.nn.functional.one_hot(attribute.labels, len(present)).float()
        acts.append(onehot[:, present])
        dirs.append(centred[present].float())
        names += [f"{attr}={attribute.values[v]}" for v in torch.nonzero(present).flatten()]
    activations = torch.cat(acts, 1)
    return Side(
        info=SideInfo(spec=spec.label, kind="supervised", method=spec.method, architecture=None,
                      format=None, sha256=None, n_latents=len(names),
                      n_alive=int((activations.std(0) > 0).sum())),
        activations=activations,
        directions=torch.cat(dirs, 0),
        names=tuple(names),
    )
