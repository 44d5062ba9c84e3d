"""`python -m sae_bench.cli ...`: the same as the `sae-bench` command."""

import sys

from sae_bench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
