"""File helpers used by every room: atomic writes, bounded reads of user-named files, output
pre-flight checks and byte-stable safetensors."""
