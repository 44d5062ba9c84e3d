"""The ground truth: supervised attribute dictionaries, their scores (the reference) and
activation-patching scans for where each attribute matters."""
