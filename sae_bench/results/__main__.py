"""`python -m sae_bench.results`: regenerate the committed JSON schemas (the evaluation result's
and the correspondence document's of `sae-bench compare`)."""

from sae_bench.compare import result as correspondence
from sae_bench.fileio.atomic import write_text_atomic
from sae_bench.results.document import write_schema

if __name__ == "__main__":
    print(f"wrote {write_schema()}")
    write_text_atomic(correspondence.SCHEMA_PATH, correspondence.json_schema())
    print(f"wrote {correspondence.SCHEMA_PATH}")
