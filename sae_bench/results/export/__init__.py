"""Exports of saved results to other tools' formats (never loads a model)."""
