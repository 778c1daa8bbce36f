"""One-shot (weight-sharing) experiments: cells, sweeps and their results directories.

The orchestration above :mod:`harness.supernet` (which holds the networks, the search loop and
the selection rules): :mod:`harness.oneshot.cell` runs one experiment cell end to end (data,
supernet, search, selection, scoring against the ground truth), :mod:`harness.oneshot.grid`
validates what a sweep runs and :mod:`harness.oneshot.sweep` runs a sweep into a results
directory. Their report is :mod:`harness.report.supernet`.
"""
