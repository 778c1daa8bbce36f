"""The benchmark table: store format, official and tidy importers, queries, synthetic data.

Open an imported store with :func:`harness.bench.store.open_store`; map a task and a role to
the official keys with :func:`harness.bench.names.resolve`; let
:func:`harness.bench.choice.choose_store` pick, by coverage, the store a command uses when it
is given none.
"""
