"""Orchestration: scores SAEs on every axis at their nodes, beside the supervised dictionary
measured the same way, and assembles the typed per-unit results."""
