"""`python -m sae_bench.results`: regenerate the committed JSON schema."""

from sae_bench.results.document import write_schema

if __name__ == "__main__":
    print(f"wrote {write_schema()}")
