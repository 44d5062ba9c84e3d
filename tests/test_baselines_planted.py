"""Issue 16: on a one-layer model with a planted preference (token 1 over token 2), the learned
baselines must learn to flip it, and a prompt-independent name swap must stay out of reach."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from sae_bench.baselines.editset import EditSet
from sae_bench.baselines.objective import Settings, effectiveness, faithfulness
from sae_bench.baselines.scaling import localisation, scaling_edit, train_scaling
from sae_bench.baselines.steering import steering_edit, train_steering
from sae_bench.engine.runner import InterventionRunner
from sae_bench.models.nodes import Node
from sae_bench.tasks.base import Attribute, TaskData

NODE = Node("blocks.0.hook_resid_post", "END")


def planted_model() -> HookedTransformer:
    """Attention-only, no LayerNorm, attention output zero: the logits at END are the END token's
    embedding times W_U. Tokens 3..5 embed to +c·e0 (c = 1, 2, 3) and W_U reads e0 as +1 for
    token 1 and −1 for token 2, so the model prefers token 1 by 2c; the other tokens read e1."""
    cfg = HookedTransformerConfig(n_layers=1, d_model=8, n_ctx=4, d_head=4, n_heads=2,
                                  d_vocab=6, attn_only=True, normalization_type=None,
                                  act_fn="relu", seed=0)
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for tok, c in ((3, 1.0), (4, 2.0), (5, 3.0)):
            model.embed.W_E[tok, 0] = c
            model.embed.W_E[tok, 1] = 0.5
        model.unembed.W_U[0, 1], model.unembed.W_U[0, 2] = 1.0, -1.0
        model.unembed.W_U[1, 0] = 1.0  # token 0: a bystander whose logit must not move
    return model


def planted_set(model, n: int = 96) -> EditSet:
    g = torch.Generator().manual_seed(0)
    tokens = torch.cat([torch.zeros(n, 3, dtype=torch.long),
                        torch.randint(3, 6, (n, 1), generator=g)], 1)
    positions = {"END": torch.full((n,), 3)}
    answer, distractor = torch.full((n,), 1), torch.full((n,), 2)
    pos_labels = Attribute("Pos", ("a", "b"), torch.zeros(n, dtype=torch.long))
    data = TaskData(task="planted", version="0", split="fit", seed=0,
                    prompts=tuple(str(i) for i in range(n)), tokens=tokens, answer_ids=answer,
                    distractor_ids=distractor,
                    attributes={"Pos": pos_labels},
                    positions=positions)
    runner = InterventionRunner(model, tokens, positions, answer, distractor, batch_size=32)
    top = runner.clean().argmax
    assert top is not None and bool((top == 1).all())  # the planted preference holds
    return EditSet(data, "Pos", (NODE,), runner.activations([NODE]), {},
                   torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long),
                   distractor, top, runner)


def _accuracy(edit_set: EditSet, edited) -> float:
    top = edit_set.runner.run(edited).argmax
    assert top is not None
    return float((top == edit_set.target).float().mean())


def test_steering_vector_learns_to_flip_the_planted_preference():
    fit_set = planted_set(planted_model())
    assert _accuracy(fit_set, dict(fit_set.acts)) == 0.0
    vectors = train_steering(fit_set, Settings(steps=150, batch=32, lr=0.1))
    assert _accuracy(fit_set, steering_edit(fit_set.acts, fit_set.sign(), vectors)) == 1.0
    # it moved along the planted direction (e0), against token 1
    assert float(vectors[NODE][0]) < 0


def test_activation_scaling_learns_to_flip_by_reversing_the_site():
    fit_set = planted_set(planted_model())
    alphas = train_scaling(fit_set, Settings(steps=150, batch=32, lr=0.1))
    assert float(alphas[NODE]) < 0  # only a reversed sign makes token 2 win
    assert _accuracy(fit_set, scaling_edit(fit_set.acts, alphas)) == 1.0
    assert localisation(alphas)[0][0] == NODE


def test_the_objective_tells_an_effective_edit_from_an_ineffective_one():
    """effectiveness falls once the target wins; faithfulness is 0 when only the two answer
    tokens move and grows when a bystander moves."""
    logits = torch.tensor([[0.0, 2.0, -2.0, 0.0]])
    flipped = torch.tensor([[0.0, -2.0, 2.0, 0.0]])
    bystander = torch.tensor([[3.0, -2.0, 2.0, 0.0]])
    target, top = torch.tensor([2]), torch.tensor([1])
    assert float(effectiveness(flipped, target)) < 0.2 < float(effectiveness(logits, target))
    assert float(faithfulness(flipped, logits, target, top)) < 1e-6
    assert float(faithfulness(bystander, logits, target, top)) > 0.5
