"""Search methods, one module each; importing this package registers them all.

Black-box methods register themselves on import. Supernet methods are registered by location
and imported on first use, so that importing this package (and listing the methods) does not
import torch. ``darts_v1`` / ``darts_v2`` are DARTS with ``order`` 1 / 2; GAEA's single-level
(default) and bilevel variants are one method with the ``single_level`` switch.
``fixed_alpha`` trains the supernet under DARTS's initial alpha, never updated (DARTS-PT's
"fix alpha" supernet). DARTS, ``fixed_alpha``, GAEA and RARTS search both spaces (on the size
space over each layer's widths); TAS, FBNet-V2, TuNAS and DNAL are size-space channel searches.

Use :func:`harness.registry.get_method` / :func:`harness.registry.make_method` to build one
by name.
"""

from harness.registry import register_supernet_method
from methods import alpha_nas, random_search, rea, reinforce

__all__ = ["alpha_nas", "random_search", "rea", "reinforce"]

register_supernet_method("darts_v1", "methods.darts:Darts", order=1)
register_supernet_method("darts_v2", "methods.darts:Darts", order=2)
register_supernet_method("fixed_alpha", "methods.darts:FixedAlpha")
register_supernet_method("gaea", "methods.gaea:Gaea")
register_supernet_method("rarts", "methods.rarts:Rarts")
register_supernet_method("gdas", "methods.gdas:Gdas")
register_supernet_method("drnas", "methods.drnas:Drnas")
register_supernet_method("tas", "methods.tas:Tas")
register_supernet_method("fbnet_v2", "methods.fbnet_v2:FbnetV2")
register_supernet_method("tunas", "methods.tunas:Tunas")
register_supernet_method("dnal", "methods.dnal:Dnal")
