"""The feature library: SQL feature groups (features/sql), the text derivations they read
(features/text.py), the runner and the input-fingerprint cache. It imports no pipeline, connector or
model code; every entry point takes the DuckDB connection to work on (contract: features/runner.py)."""
