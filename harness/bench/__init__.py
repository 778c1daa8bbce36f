"""The benchmark table: store format, official and tidy importers, queries, synthetic data.

Open an imported store with :func:`harness.bench.store.open_store`; map a task and a role to
the official keys with :func:`harness.bench.names.resolve`.
"""
