"""Bundles: one SAE per node, listed in a ``bundle.json`` manifest.

Manifest (paths relative to the manifest's folder; each may be any single-SAE format)::

    {"saes": [
        {"node": "blocks.9.attn.hook_z:9@END", "path": "nm_9_9.safetensors"},
        {"node": "blocks.3.hook_resid_post@S2", "path": "saelens/blocks.3.hook_resid_post"}
    ]}

The node is authoritative for *where* the SAE is applied: its position overrides the SAE's own,
and a hook or head the SAE file leaves unknown is taken from it. A file that names a *different*
hook or head is refused: one of the two is wrong and guessing would evaluate the wrong site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sae_bench.errors import UserError
from sae_bench.models.nodes import Node
from sae_bench.sae.base import SAE
from sae_bench.sae.files import read_json, sha256_file

FORMAT_NAME = "bundle"
MANIFEST_FILE = "bundle.json"
SingleLoader = Callable[[Path], Any]  # returns an SAE (or a bundle, which is refused)


@dataclass(frozen=True, eq=False)
class SAEBundle(Mapping[Node, SAE]):
    """Ordered mapping Node -> SAE loaded from a manifest (order = manifest order)."""

    entries: tuple[tuple[Node, SAE], ...]
    source_path: str | None = None
    sha256: str | None = None

    def __getitem__(self, key: Node | str) -> SAE:
        node = Node.parse(key) if isinstance(key, str) else key
        for entry_node, sae in self.entries:
            if entry_node == node:
                return sae
        raise KeyError(node)

    def __iter__(self) -> Iterator[Node]:
        return (node for node, _ in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(node for node, _ in self.entries)

    def __repr__(self) -> str:
        nodes = ", ".join(node.name for node in self.nodes)
        return f"SAEBundle({len(self)} SAEs: {nodes}; source={self.source_path})"


def save_bundle(saes: Mapping[Node, SAE], folder: Path) -> Path:
    """Write one native file per node (`node00.safetensors`, ...) and the manifest listing them,
    in node order; returns the manifest's path. Each file and the manifest are written
    atomically, the manifest last, so a crash never leaves a manifest naming a missing file."""
    import json

    from sae_bench.fileio.atomic import write_text_atomic
    from sae_bench.sae.native import save_native

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (node, sae) in enumerate(saes.items()):
        name = f"node{i:02d}.safetensors"
        save_native(sae, folder / name)
        entries.append({"node": node.name, "path": name})
    manifest = folder / MANIFEST_FILE
    write_text_atomic(manifest, json.dumps({"saes": entries}, indent=2) + "\n")
    return manifest


def manifest_path(path: Path) -> Path:
    """The manifest file for a bundle given as its folder or as the manifest itself."""
    return path / MANIFEST_FILE if path.is_dir() else path


def load_bundle(path: Path, load_one: SingleLoader) -> SAEBundle:
    """Load every SAE a manifest lists, validating the manifest first (cheap errors first)."""
    manifest = manifest_path(path)
    data = read_json(manifest, "bundle manifest")
    raw_entries = data.get("saes")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise UserError(
            f"{manifest}: expected a non-empty list under 'saes', each "
            '{"node": "HOOK[:HEAD]@ROLE", "path": "FILE"}.'
        )
    parsed: list[tuple[Node, Path]] = []
    seen: dict[Node, int] = {}
    for index, entry in enumerate(raw_entries):
        node, sae_path = _parse_entry(entry, index, manifest)
        if node in seen:
            raise UserError(
                f"{manifest}: node {node.name} is listed twice (entries {seen[node]} and {index}); "
                "each node takes one SAE."
            )
        seen[node] = index
        parsed.append((node, sae_path))

    entries = []
    for index, (node, sae_path) in enumerate(parsed):
        try:
            sae = load_one(sae_path)
            if not isinstance(sae, SAE):
                raise UserError(f"{sae_path} is itself a bundle; bundles cannot be nested: list "
                                "its SAE files in this manifest instead.")
            entries.append((node, _place(sae, node)))
        except UserError as err:
            raise UserError(f"{manifest}: entry {index} ({node.name}): {err}") from None
    return SAEBundle(tuple(entries), source_path=str(manifest), sha256=sha256_file(manifest))


def _parse_entry(entry: Any, index: int, manifest: Path) -> tuple[Node, Path]:
    if not isinstance(entry, dict) or not isinstance(entry.get("node"), str) or not isinstance(
        entry.get("path"), str
    ):
        raise UserError(
            f"{manifest}: entry {index} must be an object with string 'node' and 'path', "
            f"got {entry!r:.80}."
        )
    try:
        node = Node.parse(entry["node"])
    except UserError as err:
        raise UserError(f"{manifest}: entry {index}: {err}") from None
    sae_path = Path(entry["path"])
    if not sae_path.is_absolute():
        sae_path = manifest.parent / sae_path
    if not sae_path.exists():
        raise UserError(
            f"{manifest}: entry {index} ({node.name}): SAE file not found: {sae_path} "
            "(paths are relative to the manifest's folder)."
        )
    return node, sae_path


def _place(sae: SAE, node: Node) -> SAE:
    """Put the SAE at the node: position from the node, hook/head must agree when known."""
    if sae.hook_name is not None and sae.hook_name != node.hook:
        raise UserError(
            f"the SAE file says hook {sae.hook_name!r} but the manifest node uses {node.hook!r}; "
            "fix whichever is wrong."
        )
    if sae.head is not None and sae.head != node.head:
        raise UserError(
            f"the SAE file says head {sae.head} but the manifest node has head {node.head}; "
            "fix whichever is wrong."
        )
    metadata = dict(sae.metadata)
    if sae.hook_name is None:
        metadata["hook_name_source"] = "bundle node"
    return sae.replace(
        hook_name=node.hook, head=node.head, position=node.position, metadata=metadata
    )
