"""Task-grounded evaluation of sparse autoencoders (SAEs) against supervised attribute dictionaries."""

__version__ = "0.1.0"
