"""Reports from saved results: leaderboard tables, plots, HTML, Markdown and CSV.

Never loads a model; plots and tables take plain rows (`sae_bench.report.rows`)."""
