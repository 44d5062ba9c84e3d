"""Supervised attribute dictionaries: the ground truth every SAE is compared with (METHOD §3).

At a node with activations a(p) [n, d] and categorical attributes, the dictionary holds the mean
ā and one feature u_{i,v} per attribute value. Reconstruction: â(p) = ā + Σ_i u_{i, attr_i(p)};
edit of attribute i from v to v': a − u_{i,v} + u_{i,v'}.

Two fits:
- ``mean``: u_{i,v} = mean{a(p) : attr_i(p) = v} − ā (the paper's main variant);
- ``lstsq``: all attributes jointly, U = argmin ‖(A − ā) − C U‖ with C the one-hot design
  matrix. C is rank-deficient (each attribute's block sums to 1), so the minimum-norm solution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from sae_bench.errors import UserError

METHODS = ("mean", "lstsq")


@dataclass(frozen=True)
class SupervisedDictionary:
    method: str
    mean: torch.Tensor  # [d]
    features: dict[str, torch.Tensor]  # attribute -> [n_values, d]
    present: dict[str, torch.Tensor]  # attribute -> [n_values] bool, value seen while fitting

    @property
    def d(self) -> int:
        return self.mean.shape[0]

    def _lookup(self, attribute: str, values: torch.Tensor) -> torch.Tensor:
        missing = ~self.present[attribute][values]
        if bool(missing.any()):
            bad = sorted(set(values[missing].tolist()))
            raise UserError(
                f"attribute {attribute} values {bad[:5]} never occurred in the fit prompts, so "
                "they have no supervised feature; use more fit prompts (--n-fit, default 20000)."
            )
        return self.features[attribute][values]

    def reconstruct(self, labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """â [n, d] from attribute labels {attribute: [n] long}."""
        out = self.mean.expand(len(next(iter(labels.values()))), -1).clone()
        for attribute in self.features:
            out += self._lookup(attribute, labels[attribute])
        return out

    def edit(
        self, acts: torch.Tensor, attribute: str, source: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """acts [n, d] with attribute `attribute` moved from value `source` to `target` ([n])."""
        return acts - self._lookup(attribute, source) + self._lookup(attribute, target)


def fit(
    acts: torch.Tensor,
    labels: Mapping[str, torch.Tensor],
    n_values: Mapping[str, int],
    method: str = "mean",
) -> SupervisedDictionary:
    """Fit a dictionary on activations [n, d] with labels {attribute: [n] long in [0, n_values)}."""
    if method not in METHODS:
        raise ValueError(f"unknown dictionary method {method!r}; expected one of {METHODS}")
    # float64: lstsq on a one-hot design and means over 20k rows both lose digits in float32.
    a = acts.double()
    mean = a.mean(0)
    counts = {
        k: torch.bincount(labels[k], minlength=n_values[k]).double() for k in n_values
    }
    present = {k: c > 0 for k, c in counts.items()}
    if method == "mean":
        features = {}
        for k in n_values:
            sums = torch.zeros(n_values[k], a.shape[1], dtype=a.dtype).index_add_(0, labels[k], a)
            means = sums / counts[k].clamp(min=1)[:, None]
            features[k] = torch.where(present[k][:, None], means - mean, torch.zeros_like(means))
    else:
        blocks, offsets, start = [], {}, 0
        for k in n_values:
            blocks.append(torch.nn.functional.one_hot(labels[k], n_values[k]).double())
            offsets[k] = (start, start + n_values[k])
            start += n_values[k]
        design = torch.cat(blocks, 1)
        # gelsd: SVD-based, returns the minimum-norm solution of a rank-deficient system.
        u = torch.linalg.lstsq(design, a - mean, driver="gelsd").solution
        features = {k: u[lo:hi] for k, (lo, hi) in offsets.items()}
    return SupervisedDictionary(
        method=method,
        mean=mean.float(),
        features={k: v.float() for k, v in features.items()},
        present=present,
    )
