"""The evaluation context: everything computed once per (model, task, seed) and shared by every
SAE scored against it — eval prompts, the clean run, counterfactual activations and targets,
mean-ablation results, and the supervised dictionaries (also cached on disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sae_bench.engine import collect
from sae_bench.engine.cache import DictionaryCache, model_fingerprint
from sae_bench.engine.patching import PatchedOutput
from sae_bench.engine.runner import InterventionRunner
from sae_bench.models.nodes import CrossSection, Node, node_width
from sae_bench.progress import Progress
from sae_bench.tasks.base import Task, TaskData
from sae_bench.truth.dictionaries import METHODS, SupervisedDictionary, fit

# Fewest fit prompts per attribute value before the comparator is called noisy (**choice**): a
# feature is a mean over its prompts, so its error is the activation spread / sqrt(count); at 50
# that is 14% of the spread, at the 25 a 5,000-prompt fit gives 200 names it is 20%, enough to
# move the supervised S edit across the 0.8 mark on ioi-tiny.
MIN_FIT_PER_VALUE = 50


@dataclass
class EvalContext:
    model: Any  # a TransformerLens HookedTransformer
    model_name: str
    task: Task
    seed: int
    n_fit: int
    n_eval: int
    cache: DictionaryCache
    progress: Progress
    batch_size: int = 256
    # The supervised dictionary every SAE is compared with. Least squares by default: the paper
    # recommends MSE dictionaries in general (mean dictionaries are exact only when the
    # attributes are independent, and are noisier at small fit sizes).
    comparator: str = "lstsq"
    # Also build the linear-relational-concept dictionary (method "lrc", sae_bench/lrc/) beside
    # the label-based ones; implied by comparator "lrc".
    with_lrc: bool = False
    # Layers of the nodes that will be patched (see `plan`); empty: cache every layer.
    planned_layers: set[int] = field(default_factory=set)
    _memo: dict = field(default_factory=dict, repr=False)

    # ---- prompts and the clean run -------------------------------------------------------
    def memo(self, key, compute):
        """Compute once per context; later calls (other SAEs, other axes) reuse the value."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def fingerprint(self) -> str:
        return self.memo("fingerprint", lambda: model_fingerprint(self.model))

    @property
    def eval_data(self) -> TaskData:
        return self.memo(
            "eval", lambda: self.task.build(self.model, n=self.n_eval, seed=self.seed, split="eval")
        )

    @property
    def fit_data(self) -> TaskData:
        return self.memo(
            "fit",
            lambda: self.task.build(
                self.model, n=self.n_fit, seed=self.seed, split="fit", counterfactuals=False
            ),
        )

    def plan(self, nodes: Sequence[Node]) -> None:
        """Say which nodes will be patched, before the first run (calls accumulate). The runner
        then caches keys and values only from the earliest of their layers on, and the residual
        stream only at their layers (GPT-2 Small: 60 MB per layer and per 1,000 prompts for each
        of the three). Patching elsewhere later still works (what is missing is recomputed)."""
        if "runner" not in self._memo:
            self.planned_layers.update(node.layer for node in nodes)
            # A resid_post node is read from the next block's input.
            self.planned_layers.update(node.layer + 1 for node in nodes
                                       if node.hook.endswith(".hook_resid_post"))

    @property
    def runner(self) -> InterventionRunner:
        def make():
            d = self.eval_data
            with self.progress.step("clean run on eval prompts"):
                return InterventionRunner(
                    self.model, d.tokens, d.positions, d.answer_ids, d.distractor_ids,
                    batch_size=self.batch_size,
                    cache_from_layer=min(self.planned_layers, default=0),
                    resid_layers=self.planned_layers or None,
                )

        return self.memo("runner", make)

    @property
    def clean(self) -> PatchedOutput:
        return self.memo("clean", lambda: self.runner.clean())

    @property
    def clean_argmax(self) -> torch.Tensor:
        argmax = self.clean.argmax
        assert argmax is not None  # the clean run always computes it
        return argmax

    def run_argmax(self, patches) -> torch.Tensor:
        """[n] top-1 token at END with `patches` applied."""
        argmax = self.runner.run(patches, argmax=True).argmax
        assert argmax is not None
        return argmax

    def width(self, node: Node) -> int:
        return node_width(self.model, node)

    # ---- activations -------------------------------------------------------------------------
    def eval_activations(self, nodes: Sequence[Node]) -> dict[Node, torch.Tensor]:
        missing = [n for n in nodes if ("act", n) not in self._memo]
        if missing:
            for node, acts in self.runner.activations(missing).items():
                self._memo[("act", node)] = acts
        return {n: self._memo[("act", n)] for n in nodes}

    def counterfactual_activations(
        self, attribute: str, nodes: Sequence[Node]
    ) -> dict[Node, torch.Tensor]:
        missing = [n for n in nodes if ("cf_act", attribute, n) not in self._memo]
        if missing:
            cf = self.eval_data.counterfactuals[attribute]
            with self.progress.step(f"counterfactual activations ({attribute})"):
                acts = collect.node_activations(
                    self.model, cf.tokens, cf.positions, missing, batch_size=self.batch_size
                )
            for node, a in acts.items():
                self._memo[("cf_act", attribute, node)] = a
        return {n: self._memo[("cf_act", attribute, n)] for n in nodes}

    def counterfactual_target(self, cs: CrossSection, attribute: str) -> torch.Tensor:
        """[n] top-1 token with the cross-section patched from the counterfactual prompts."""

        def compute():
            patches = self.counterfactual_activations(attribute, cs.nodes)
            return self.run_argmax(patches)

        return self.memo(("target", cs.name, cs.nodes, attribute), compute)

    # ---- supervised dictionaries ----------------------------------------------------------------
    @property
    def methods(self) -> tuple[str, ...]:
        """The dictionary methods built and scored: the label-based ones, and "lrc" if asked."""
        lrc = self.with_lrc or self.comparator == "lrc"
        return (*METHODS, "lrc") if lrc else METHODS

    def dictionaries(self, nodes: Sequence[Node]) -> dict[Node, dict[str, SupervisedDictionary]]:
        """{node: {method: dictionary}}, from memory, then disk, then fitted on fit prompts."""
        out: dict[Node, dict[str, SupervisedDictionary]] = {}
        to_fit: list[Node] = []
        for node in nodes:
            if ("dict", node) in self._memo:
                out[node] = self._memo[("dict", node)]
                continue
            found = {m: self.cache.get(self.cache_key(node, m)) for m in METHODS}
            if all(d is not None for d in found.values()):
                self._memo[("dict", node)] = out[node] = found  # type: ignore[assignment]
            else:
                to_fit.append(node)
        if to_fit:
            fit_data = self.fit_data
            acts = self.fit_activations(to_fit)
            n_values = {k: len(a.values) for k, a in fit_data.attributes.items()}
            for node in to_fit:
                fitted = {m: fit(acts[node], fit_data.labels, n_values, m) for m in METHODS}
                for m, d in fitted.items():
                    key = self.cache_key(node, m)
                    self.cache.put(key, d, node=node.name, model=self.model_name)
                self._memo[("dict", node)] = out[node] = fitted
        if "lrc" in self.methods:  # derived from the model downstream, not from labels alone
            from sae_bench.lrc.dictionary import lrc_fits

            for node, (lrc, _) in lrc_fits(self, nodes).items():
                out[node] = {**out[node], "lrc": lrc}
        return out

    def supervised_reconstruction(self, node: Node, method: str = "mean") -> torch.Tensor:
        """â [n_eval, width]: the supervised dictionary's reconstruction of the eval prompts."""
        return self.memo(
            ("sup_recon", node, method),
            lambda: self.dictionaries([node])[node][method].reconstruct(self.eval_data.labels),
        )

    def fit_activations(self, nodes: Sequence[Node]) -> dict[Node, torch.Tensor]:
        """Activations on the fit prompts {node: [n_fit, width]} from memory, then disk, then
        the model (kept: control ranks latents on them, since eval prompts never contain the
        counterfactual names)."""
        missing = []
        for node in nodes:
            if ("fit_act", node) not in self._memo:
                cached = self.cache.get_activations(self.cache_key(node, "activations"),
                                                    shape=(self.n_fit, self.width(node)))
                if cached is None:
                    missing.append(node)
                else:
                    self._memo[("fit_act", node)] = cached
        if missing:
            fit_data = self.fit_data
            with self.progress.step(f"fit activations for {len(missing)} node(s)"):
                acts = collect.node_activations(
                    self.model, fit_data.tokens, fit_data.positions, missing,
                    batch_size=self.batch_size,
                )
            for node, a in acts.items():
                self.cache.put_activations(self.cache_key(node, "activations"), a,
                                           node=node.name, model=self.model_name)
                self._memo[("fit_act", node)] = a
        return {n: self._memo[("fit_act", n)] for n in nodes}

    def cache_key(self, node: Node, method: str, **extra: object) -> str:
        """A dictionary's key (method "mean"/"lstsq"/"lrc"), or the fit activations'
        ("activations"); `extra` adds what else a method's entry depends on."""
        return DictionaryCache.key(
            model=self.model_name,
            fingerprint=self.fingerprint,
            node=node.name,
            task=self.task.name,
            task_version=self.task.version,
            seed=self.seed,
            n_fit=self.n_fit,
            method=method,
            **extra,
        )

    def fit_size_warning(self) -> str | None:
        """A warning when some attribute value occurs in too few fit prompts for its supervised
        feature to be trusted (`MIN_FIT_PER_VALUE`), else None."""
        fit = self.fit_data
        worst = min(
            (int(torch.bincount(a.labels, minlength=len(a.values)).min()), name)
            for name, a in fit.attributes.items()
        )
        if worst[0] >= MIN_FIT_PER_VALUE:
            return None
        return (f"a value of {worst[1]} occurs in only {worst[0]} of {self.n_fit} fit prompts "
                f"(< {MIN_FIT_PER_VALUE}): its supervised ({self.comparator}) feature is a noisy "
                "estimate, so the supervised comparators are too; pass a larger --n-fit")

    # ---- shared patched runs ---------------------------------------------------------------------
    def mean_ablation(self, cs: CrossSection) -> PatchedOutput:
        def compute():
            dicts = self.dictionaries(cs.nodes)
            n = len(self.eval_data)
            patches = {
                node: dicts[node]["mean"].mean.expand(n, -1).contiguous() for node in cs.nodes
            }
            return self.runner.run(patches)

        return self.memo(("mean_ablation", cs.name, cs.nodes), compute)

    def attribute_ablation(self, node: Node, attribute: str) -> PatchedOutput:
        """The run with `attribute`'s supervised (comparator) feature removed at `node` alone:
        a − u_{attribute, value(p)}, i.e. the attribute mean-ablated there."""

        def compute():
            dictionary = self.dictionaries([node])[node][self.comparator]
            acts = self.eval_activations([node])[node]
            labels = self.eval_data.labels[attribute]
            return self.runner.run({node: acts - dictionary.features[attribute][labels]})

        return self.memo(("attribute_ablation", node, attribute, self.comparator), compute)
