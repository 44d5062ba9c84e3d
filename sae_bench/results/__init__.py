"""Result documents: the typed, versioned schema, metric metadata, provenance, run summaries,
golden score files and exports to other tools' formats."""
