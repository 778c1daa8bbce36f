"""Search methods, one module each; importing this package registers them all.

Use :func:`harness.protocol.get_method` / :func:`harness.protocol.make_method` to build one
by name.
"""

from methods import alpha_nas, random_search, rea, reinforce

__all__ = ["alpha_nas", "random_search", "rea", "reinforce"]
