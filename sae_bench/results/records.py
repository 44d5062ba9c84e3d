"""What every typed, versioned document we write shares: frozen records, optional fields that
stay out of the JSON while absent, and one loader that turns a bad file into a one-line error."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer


class Frozen(BaseModel):
    """A record that cannot change after it is built and refuses unknown fields when loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class OmitsAbsent(Frozen):
    """A record whose fields named in `omit_when_absent` are left out of the JSON while None.

    Such fields were added to a schema later: leaving them out keeps every document that does
    not use them byte-identical to what older versions wrote, and older documents still load."""

    omit_when_absent: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler):
        data = handler(self)
        for name in self.omit_when_absent:
            if data.get(name) is None:
                data.pop(name, None)
        return data


Doc = TypeVar("Doc", bound=BaseModel)


def load_versioned(path: Path | str, model: type[Doc], *, schema: str, version: str,
                   command: str, kind: str | None = None) -> Doc:
    """The document at `path` as `model`, or a `UserError` naming the fix.

    `schema` names the document in messages ("result", "correspondence"), `version` is the
    schema version it must carry, `kind` (when given) the `kind` field it must carry, and
    `command` the `sae-bench` subcommand that writes a valid one."""
    from sae_bench.errors import UserError
    from sae_bench.fileio.bounded import read_json_bounded

    path = Path(path)
    # Bounded, regular files only: a symlink to /dev/zero or a FIFO must not hang the reader.
    raw = read_json_bounded(path, f"{schema} file")
    if (not isinstance(raw, dict) or raw.get("schema_version") != version
            or (kind is not None and raw.get("kind") != kind)):
        raise UserError(f"{path} is not a schema {version} {schema} document; re-run "
                        f"`sae-bench {command}` with this version.")
    try:
        return model.model_validate(raw)
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{path} does not match the {schema} schema ({first}); re-run "
                        f"`sae-bench {command}` to write a valid one.") from None
