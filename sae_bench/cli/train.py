"""`sae-bench train-sae`: reference SAEs trained on task prompts or on the model's training text."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sae_bench.engine.patching import collect_activations
from sae_bench.errors import UserError
from sae_bench.fileio.preflight import check_output_dir, check_output_file
from sae_bench.models.nodes import Node, node_width
from sae_bench.models.registry import DEFAULT_PROCESSING, load_model
from sae_bench.progress import Progress
from sae_bench.tasks import get_task


def training_text_sampler(model_name: str):
    """`sample(n, generator) -> documents` of the model's general training text. Only the
    trained shipped models' corpora exist offline: ioi-tiny's, and ioi-circuit's with the mix
    its recipe records."""
    if model_name == "ioi-tiny":
        from sae_bench.models.ioi_tiny.corpus import sample_documents
    elif model_name == "ioi-circuit":
        from sae_bench.models.ioi_circuit.train import shipped_training_text as sample_documents
    else:
        raise UserError(f"--data text needs the model's training text, which only ioi-tiny and "
                        f"ioi-circuit ship offline; use --data task for {model_name!r}.")
    return sample_documents


def text_activations(model, sample_documents, node: Node, n_docs: int,
                     seed: int) -> torch.Tensor:
    """Activations [tokens, width] of the hook at every non-BOS token of general training text
    from `sample_documents` (`training_text_sampler`; the analogue of the paper's OpenWebText
    SAEs)."""
    docs = sample_documents(n_docs, torch.Generator().manual_seed(seed))
    by_len: dict[int, list[list[int]]] = {}
    for doc in docs:
        ids = model.to_tokens(doc.text, prepend_bos=True)[0].tolist()
        by_len.setdefault(len(ids), []).append(ids)
    out = []
    for length in sorted(by_len):  # equal-length batches: no padding to mask out
        tokens = torch.tensor(by_len[length])
        captured: list[torch.Tensor] = []

        def hook(act, hook, captured=captured):
            # Every token after BOS, position-major (all documents' first token, then the
            # second, ...): the order the shipped text-data SAEs were trained on.
            x = act[:, 1:].transpose(0, 1)
            if node.head is not None:
                x = x[:, :, node.head]
            captured.append(x.reshape(-1, node_width(model, node)))

        with torch.no_grad(), model.hooks(fwd_hooks=[(node.hook, hook)]):
            model(tokens, stop_at_layer=node.layer + 1 if node.layer < model.cfg.n_layers
                  else None)
        out.extend(captured)
    return torch.cat(out).float()


def cmd_train_sae(args) -> int:
    from sae_bench.sae import save_bundle, save_native
    from sae_bench.training import TrainSettings, train_sae

    task = get_task(args.task)
    if (args.node is None) == (args.cross_section is None):
        raise UserError("give exactly one of --node NODE or --cross-section NAME.")
    if args.arch in ("topk", "batchtopk") and args.k is None:
        raise UserError(f"--arch {args.arch} needs --k (active latents per sample).")
    if args.arch in ("relu", "gated", "jumprelu") and args.l1 is None:
        raise UserError(f"--arch {args.arch} needs --l1 (the sparsity coefficient).")
    if args.k is not None and args.k > args.d_sae:
        raise UserError(f"--k {args.k} is more than --d-sae {args.d_sae} latents; give "
                        f"--k <= {args.d_sae}.")
    if getattr(args, "sparsify", None) is not None and args.arch != "topk":
        raise UserError(f"--sparsify writes TopK SAEs only; drop it or use --arch topk "
                        f"(got --arch {args.arch}).")
    # A model without training text is refused before it loads.
    sample_text = training_text_sampler(args.model) if args.data == "text" else None
    out = Path(args.out)
    if args.node is not None:
        nodes = [Node.parse(args.node)]
        # One node's SAE is one native file, and the native format is safetensors only; writing
        # it under another name than the one asked for would lose it.
        if out.suffix != ".safetensors":
            raise UserError(f"--out {out}: one node's SAE is written as a .safetensors file; "
                            "give a path ending in .safetensors.")
        check_output_file(out, "--out", example="sae.safetensors")
    else:
        by_name = {cs.name: cs for cs in task.cross_sections(args.model)}
        if args.cross_section not in by_name:
            from sae_bench.errors import unknown_name

            raise unknown_name("cross-section", args.cross_section, by_name)
        nodes = list(by_name[args.cross_section].nodes)
        check_output_dir(out, "--out")
    for flag in ("saelens", "dictionary_learning", "sparsify"):
        if getattr(args, flag, None) is not None:
            check_output_dir(getattr(args, flag), f"--{flag.replace('_', '-')}")
    progress = Progress(enabled=not args.quiet)
    model = load_model(args.model, device=args.device)
    for node in nodes:
        node_width(model, node)
        if node.position not in task.roles:
            raise UserError(f"node {node.name}: unknown position; use one of the roles "
                            f"{', '.join(task.roles)}.")
    settings = TrainSettings(architecture=args.arch, d_sae=args.d_sae, l1=args.l1, k=args.k,
                             steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed)
    if args.data == "task":
        fit = task.build(model, n=args.n_fit, seed=args.seed, split="fit", counterfactuals=False)
        acts = collect_activations(model, fit.tokens, fit.positions, nodes)
    else:
        acts = {n: text_activations(model, sample_text, n, args.n_docs, args.seed)
                for n in nodes}
    saes = {}
    # Record the weight processing of the model the SAE saw, so that `run` (and SAELens, via
    # model_from_pretrained_kwargs) load the model the same way.
    flags = DEFAULT_PROCESSING.get(args.model)
    for node in nodes:
        sae = train_sae(acts[node], settings, hook_name=node.hook, head=node.head,
                        position=node.position, progress=progress)
        # The model's name too: ioi-tiny and ioi-circuit have the same width, so only this lets
        # `run` refuse an SAE scored on a model it never saw.
        sae = sae.replace(metadata={**sae.metadata, "trained_on_model": args.model})
        if flags is not None:
            sae = sae.replace(metadata={**sae.metadata, "model_processing": dict(flags)})
        saes[node] = sae
    from sae_bench.sae.library_save import save_dictionary_learning, save_sparsify
    from sae_bench.sae.saelens_save import save_saelens

    writers = [
        ("SAELens", args.saelens, lambda sae, d: save_saelens(sae, d, model_name=args.model)),
        ("dictionary_learning", args.dictionary_learning,
         lambda sae, d: save_dictionary_learning(sae, d, lm_name=args.model)),
        ("sparsify", args.sparsify, save_sparsify),
    ]
    for label, root, write in writers:
        if root is None:
            continue
        for i, node in enumerate(nodes):
            folder = root if len(nodes) == 1 else root / f"node{i:02d}"
            write(saes[node], folder)
            print(f"wrote {label} folder {folder}", file=sys.stderr)
    if args.node is not None:
        save_native(saes[nodes[0]], out)
        print(f"wrote {out}", file=sys.stderr)
        return 0
    save_bundle({node: saes[node] for node in nodes}, out)
    print(f"wrote bundle {out} ({len(nodes)} SAEs)", file=sys.stderr)
    return 0
