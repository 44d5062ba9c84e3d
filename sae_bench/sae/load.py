"""`load_sae`: detect an SAE's format from its path and adapt it to the `SAE` contract.

Detection (a file, or a folder by its contents):

- ``*.safetensors`` / ``*.pt`` / ``*.pth`` file: native (``sae_weights.safetensors`` or
  ``sae.safetensors`` next to a ``cfg.json`` -> their SAELens / sparsify folder; ``ae.pt`` ->
  dictionary_learning);
- folder with ``bundle.json`` or any other ``*.json`` file: bundle manifest;
- folder with ``cfg.json`` + ``sae_weights.safetensors``: SAELens;
- folder with ``cfg.json`` + ``sae.safetensors``: sparsify;
- folder with ``ae.pt`` (+ ``config.json``): dictionary_learning;
- ``saelens:RELEASE/SAE_ID``: a public SAE by name, through SAELens' loader.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from sae_bench.errors import UserError, unknown_name
from sae_bench.sae import bundle, dictionary_learning, native, saelens, saelens_hub, sparsify
from sae_bench.sae.base import SAE
from sae_bench.sae.bundle import SAEBundle
from sae_bench.sae.files import describe_dir

# Registry: format name -> one-line description (for help texts and "did you mean" errors).
FORMATS: dict[str, str] = {
    native.FORMAT_NAME: "single .safetensors/.pt file with metadata (see sae_bench/sae/FORMAT.md)",
    saelens.FORMAT_NAME: "SAELens folder: cfg.json + sae_weights.safetensors",
    dictionary_learning.FORMAT_NAME: "dictionary_learning checkpoint: ae.pt + config.json",
    sparsify.FORMAT_NAME: "EleutherAI sparsify folder: cfg.json + sae.safetensors",
    bundle.FORMAT_NAME: "bundle.json manifest mapping nodes to SAE files",
}


def load_sae(
    path: str | Path,
    *,
    hook_name: str | None = None,
    input_scale: float | None = None,
    format_name: str | None = None,
) -> SAE | SAEBundle:
    """Load an SAE (or a bundle of them) from `path`, auto-detecting the format.

    `hook_name` overrides the hook the file names (or supplies one it lacks); `input_scale`
    overrides the activation normalisation constant; `format_name` skips detection. Every
    problem with the input is a one-line `UserError`. ``saelens:RELEASE/SAE_ID`` loads a public
    SAE through SAELens (the interop extra; see `saelens_hub`).
    """
    if format_name is None and saelens_hub.is_named(path):
        return saelens_hub.load_named(str(path), hook_name=hook_name, input_scale=input_scale)
    path = Path(path)
    if format_name is None:
        format_name, path = detect_format(path)
    elif format_name not in FORMATS:
        raise unknown_name("SAE format", format_name, FORMATS)
    else:
        _require_exists(path)
    if format_name == bundle.FORMAT_NAME:
        if hook_name is not None or input_scale is not None:
            raise UserError(
                "hook_name/input_scale cannot be overridden for a bundle; each entry's node "
                "sets its hook, and each SAE file carries its own input_scale."
            )
        return bundle.load_bundle(path, _load_single)
    return _LOADERS[format_name](path, hook_name, input_scale)


def with_canonical_sources(loaded: SAE | SAEBundle, path: str | Path) -> SAE | SAEBundle:
    """The same SAE(s) with `source_path` spelled independently of the cwd and of how the user
    wrote the path, so that results (which record it) are byte-identical for `x.safetensors`,
    `./x.safetensors` and `/abs/x.safetensors`: a single SAE is named by its file or folder
    name; a bundle's members by ``<bundle folder>/<path relative to the manifest's folder>``.
    The sha256 beside each name identifies the bytes."""
    resolved = Path(path).resolve()
    if isinstance(loaded, SAE):
        return loaded.replace(source_path=resolved.name)
    manifest = Path(loaded.source_path or resolved).resolve()
    folder = manifest.parent
    entries = tuple(
        (node, sae.replace(source_path=f"{folder.name}/" + Path(
            os.path.relpath(Path(sae.source_path or "").resolve(), folder)).as_posix()))
        for node, sae in loaded.entries
    )
    return dataclasses.replace(loaded, entries=entries,
                               source_path=f"{folder.name}/{manifest.name}")


def detect_format(path: Path) -> tuple[str, Path]:
    """Return ``(format name, path to hand to that loader)``; `UserError` if unrecognised."""
    _require_exists(path)
    if path.is_dir():
        found = _detect_dir(path)
        if found is not None:
            return found
        if (path / saelens.CFG_FILE).is_file():
            raise UserError(
                f"{path} has {saelens.CFG_FILE} but neither {saelens.WEIGHTS_FILE} (SAELens) nor "
                f"{sparsify.WEIGHTS_FILE} (sparsify); the weights file is missing: re-download it."
            )
        nested = sorted(p.name for p in path.iterdir() if p.is_dir() and _detect_dir(p))
        if nested:
            shown = ", ".join(nested[:6]) + (", ..." if len(nested) > 6 else "")
            raise UserError(
                f"{path} holds {len(nested)} SAEs ({shown}); point at one of them, or list them "
                f"with their nodes in a {bundle.MANIFEST_FILE} to load them together."
            )
        raise UserError(
            f"unrecognised SAE folder {path}: {describe_dir(path)}. Expected one of: "
            + "; ".join(FORMATS.values()) + "."
        )
    name, parent = path.name, path.parent
    if name in (saelens.CFG_FILE, dictionary_learning.CONFIG_FILE):
        found = _detect_dir(parent)
        if found is not None:
            return found
    if path.suffix == ".json":
        return bundle.FORMAT_NAME, path
    if name == saelens.WEIGHTS_FILE and (parent / saelens.CFG_FILE).is_file():
        return saelens.FORMAT_NAME, parent
    if name == sparsify.WEIGHTS_FILE and (parent / sparsify.CFG_FILE).is_file():
        return sparsify.FORMAT_NAME, parent
    if name == dictionary_learning.WEIGHTS_FILE:
        return dictionary_learning.FORMAT_NAME, path
    if path.suffix in (".safetensors", ".pt", ".pth"):
        return native.FORMAT_NAME, path
    raise UserError(
        f"unrecognised SAE file {path}: expected .safetensors or .pt (native), a folder, or a "
        f"{bundle.MANIFEST_FILE} manifest. Known formats: {', '.join(FORMATS)}."
    )


def _detect_dir(folder: Path) -> tuple[str, Path] | None:
    if (folder / bundle.MANIFEST_FILE).is_file():
        return bundle.FORMAT_NAME, folder
    if (folder / saelens.CFG_FILE).is_file():
        if (folder / saelens.WEIGHTS_FILE).exists():
            return saelens.FORMAT_NAME, folder
        if (folder / sparsify.WEIGHTS_FILE).exists():
            return sparsify.FORMAT_NAME, folder
    if (folder / dictionary_learning.WEIGHTS_FILE).exists():
        return dictionary_learning.FORMAT_NAME, folder
    return None


def _require_exists(path: Path) -> None:
    if not path.exists():
        raise UserError(f"SAE path not found: {path}; check the path and that the file exists.")


def _load_single(path: Path) -> SAE | SAEBundle:
    """Loader for bundle entries: detection without overrides (the node supplies the hook).
    A bundle entry that is itself a bundle (another manifest, or the manifest listing itself
    as "bundle.json" or ".") is refused before it is read, so it cannot recurse."""
    format_name, resolved = detect_format(path)
    if format_name == bundle.FORMAT_NAME:
        raise UserError(f"{path} is itself a bundle; bundles cannot be nested: list its SAE "
                        "files in this manifest instead.")
    return load_sae(resolved, format_name=format_name)


def _with_scale(sae: SAE, input_scale: float | None) -> SAE:
    return sae if input_scale is None else sae.replace(input_scale=input_scale)


_LOADERS: dict[str, Callable[[Path, str | None, float | None], SAE]] = {
    native.FORMAT_NAME: lambda p, hook, scale: native.load_native(
        p, hook_name=hook, input_scale=scale),
    saelens.FORMAT_NAME: lambda p, hook, scale: saelens.load_saelens(
        p.parent if p.is_file() else p, hook_name=hook, input_scale=scale),
    dictionary_learning.FORMAT_NAME: lambda p, hook, scale: _with_scale(
        dictionary_learning.load_dictionary_learning(p, hook_name=hook), scale),
    sparsify.FORMAT_NAME: lambda p, hook, scale: _with_scale(
        sparsify.load_sparsify(p.parent if p.is_file() else p, hook_name=hook), scale),
}
