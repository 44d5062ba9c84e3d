"""An SAE scored on the model processed the way it declares, through the real CLI (issue 12.5).

``python benchmarks/processing_probe.py --out DIR`` (about 10 minutes on 2 busy cores) writes two
SAEs at ``blocks.0.attn.hook_z:1`` of the random GPT-2-shaped model: one for raw activations
(declares no processing) and its exact image for a model with ``fold_value_biases``
(z_proc = z_raw − b_V, so b_dec − b_V), runs ``sae-bench run`` on each, and prints both runs'
approximation metrics. The declared processing makes `run` load each model as its SAE needs;
the metrics that do not depend on the activation space's origin agree, the pooled γ does not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sae_bench.cli.main import main
from sae_bench.models import processing
from sae_bench.models.registry import load_model
from sae_bench.sae import SAE, save_native

LAYER, HEAD = 0, 1


def write_saes(out: Path) -> dict[str, Path]:
    raw = load_model("gpt2-random", processing=processing.RAW)
    b_V = raw.blocks[LAYER].attn.b_V[HEAD].detach().clone()
    g = torch.Generator().manual_seed(0)
    d, n = raw.cfg.d_head, 256
    common = dict(W_enc=torch.randn(d, n, generator=g) / d**0.5,
                  W_dec=torch.randn(n, d, generator=g) / n**0.5,
                  b_enc=torch.randn(n, generator=g) * 0.1, architecture="relu",
                  hook_name=f"blocks.{LAYER}.attn.hook_z", head=HEAD)
    b_dec = torch.randn(d, generator=g) * 0.1
    fvb = {**processing.RAW, "fold_value_biases": True}
    return {
        "raw": save_native(SAE(**common, b_dec=b_dec,
                               metadata={"model_processing": processing.RAW}),
                           out / "raw.safetensors"),
        "fold_value_biases": save_native(SAE(**common, b_dec=b_dec - b_V,
                                             metadata={"model_processing": fvb}),
                                         out / "fvb.safetensors"),
    }


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = {}
    for name, path in write_saes(args.out).items():
        run = args.out / f"run_{name}"
        assert main(["run", "--sae", str(path), "--model", "gpt2-random", "--position", "END",
                     "--n-fit", "2000", "--n-eval", "200", "--out", str(run), "--quiet",
                     "--cache-dir", str(args.out / "cache")]) == 0
        unit = json.loads((run / "results.json").read_text())["units"][0]
        metrics = {**unit["approximation"], **unit["per_node"][0]["approximation"]}
        rows[name] = {k: v["value"] for k, v in metrics.items()}
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main_()
