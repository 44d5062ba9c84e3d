"""The command line (`sae-bench`): argument parsing and one function per command.

The top room: it may import every other one, and nothing imports it (see ARCHITECTURE.md)."""
