"""Task-grounded evaluation of sparse autoencoders against supervised attribute dictionaries."""

__version__ = "0.1.0"
