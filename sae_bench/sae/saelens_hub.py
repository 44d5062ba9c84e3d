"""Public SAEs by name: ``--sae saelens:RELEASE/SAE_ID`` through SAELens' own loader.

SAELens (the `interop` extra) resolves the release in its pretrained-SAE directory, downloads the
files from the Hugging Face hub, converts old layouts and folds a release's norm scaling factor;
the result is saved as a SAELens 6 folder in a temporary directory and read by `load_saelens`,
so a named SAE is held to exactly the same mapping as a folder on disk. The release and ID are
checked offline first (SAELens ships the directory), and an unreachable hub fails in seconds
with one line, like ``--model gpt2``.

Concatenated-z releases (``gpt2-small-hook-z-kk``) read every head's z at once
(d_in = n_heads·d_head). They are scored at the layer's z node, ``blocks.L.attn.hook_z@ROLE``,
which holds the same vector; a single head's slice is not exact, because each latent's
pre-activation sums over all heads (see `SAE.check_width`).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from sae_bench.errors import UserError
from sae_bench.sae.base import SAE
from sae_bench.sae.files import one_line

PREFIX = "saelens:"


def is_named(path: str | Path) -> bool:
    return str(path).startswith(PREFIX)


def parse(spec: str) -> tuple[str, str]:
    body = spec[len(PREFIX):]
    if "/" not in body:
        raise UserError(f"--sae {spec}: expected saelens:RELEASE/SAE_ID, e.g. "
                        "saelens:gpt2-small-res-jb/blocks.8.hook_resid_pre.")
    release, sae_id = body.split("/", 1)
    return release, sae_id


def load_named(spec: str, *, hook_name: str | None = None,
               input_scale: float | None = None) -> SAE:
    """Load ``saelens:RELEASE/SAE_ID`` (needs SAELens and the hub, or the hub's local cache).

    Everything that can fail offline is checked before SAELens is imported (its import alone
    takes ~15 s on 2 cores): the release and ID against SAELens' shipped directory, and the hub.
    """
    release, sae_id = parse(str(spec))
    directory = _directory(spec)
    if release not in directory:
        close = difflib.get_close_matches(release, directory, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(f"--sae {spec}: unknown SAELens release {release!r}.{hint} SAELens lists "
                        f"{len(directory)} releases (sae_lens/pretrained_saes.yaml).")
    ids = [str(entry["id"]) for entry in directory[release].get("saes", [])]
    if sae_id not in ids:
        close = difflib.get_close_matches(sae_id, ids, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(f"--sae {spec}: release {release} has no SAE {sae_id!r}.{hint} It has "
                        f"{len(ids)}: {', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''}.")
    repo = str(directory[release].get("repo_id"))
    if not _reachable(repo):
        raise UserError(
            f"--sae {spec}: its files ({repo}) are not in the local Hugging Face cache and the hub "
            "cannot be reached; download them once on a connected machine, or pass a SAELens "
            "folder on disk."
        )
    from sae_lens import SAE as LensSAE

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lens = LensSAE.from_pretrained(release, sae_id, device="cpu")
    except Exception as exc:  # hub, conversion and config errors all mean: cannot get it
        raise UserError(f"--sae {spec}: SAELens could not load it ({one_line(exc)}); check the "
                        "connection, or pass a SAELens folder on disk.") from None
    from sae_bench.sae.saelens import load_saelens

    with tempfile.TemporaryDirectory(prefix="sae_bench_saelens_") as tmp:
        lens.save_model(tmp)
        sae = load_saelens(Path(tmp), hook_name=hook_name, input_scale=input_scale)
    metadata = {**sae.metadata, "saelens_release": release, "saelens_id": sae_id}
    return sae.replace(source_path=str(spec), metadata=metadata)


def _directory(spec: str) -> dict[str, Any]:
    """SAELens' pretrained-SAE directory, read from its package without importing SAELens."""
    found = importlib.util.find_spec("sae_lens")
    if found is None or found.origin is None:
        raise UserError(f"--sae {spec} needs SAELens; install the interop extra "
                        "(README, 'Interop'), or pass a SAELens folder on disk.")
    import yaml

    path = Path(found.origin).parent / "pretrained_saes.yaml"
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return data if isinstance(data, dict) else {}


def _reachable(repo_id: str) -> bool:
    """The repo is in the local hub cache, or the hub answers (3 s probe, as for --model gpt2)."""
    from huggingface_hub import scan_cache_dir

    try:
        if any(r.repo_id == repo_id for r in scan_cache_dir().repos):
            return True
    except Exception:  # no cache folder yet
        pass
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    from sae_bench.models.registry import _hub_reachable

    return _hub_reachable()
