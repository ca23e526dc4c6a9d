"""EPA benchmarks: `./dev bench` (or `python -m bench [NAME...]`). Not tests: they print tables and
write JSON to bench/results/; the README quotes the latest figures."""
