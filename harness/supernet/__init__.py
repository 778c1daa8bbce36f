"""Weight-sharing supernets of both spaces and the machinery they share.

One module per space: :mod:`harness.supernet.tss` (the topology space's supernet over 6 edges x
5 ops and its discrete networks) and :mod:`harness.supernet.sss` (the size space's supernet at
width 64 narrowed over 5 layers x 8 widths, and its discrete networks). Shared: the candidate
ops (:mod:`~harness.supernet.ops`), the method contract and search loop
(:mod:`~harness.supernet.method`, :mod:`~harness.supernet.search`), selection, ground-truth
quality, checkpoints, protocol cards, and parameter/FLOP counting in the benchmark's units.
Experiments over these (cells and sweeps) live in :mod:`harness.oneshot`.
"""

from harness.supernet.counting import (
    ModelCost,
    count_flops,
    count_params,
    model_cost,
    sss_flop_counts,
    sss_param_counts,
    tss_flop_counts,
    tss_param_counts,
)
from harness.supernet.ops import OP_NAMES, ReLUConvBN, ResNetBasicBlock, make_op
from harness.supernet.sss import SssNetwork, SssSuperNet
from harness.supernet.tss import (
    EDGES,
    TssNetwork,
    TssSuperNet,
    arch_ops,
    network_from_supernet,
)

__all__ = [
    "EDGES",
    "OP_NAMES",
    "ModelCost",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "SssNetwork",
    "SssSuperNet",
    "TssNetwork",
    "TssSuperNet",
    "arch_ops",
    "count_flops",
    "count_params",
    "make_op",
    "model_cost",
    "network_from_supernet",
    "sss_flop_counts",
    "sss_param_counts",
    "tss_flop_counts",
    "tss_param_counts",
]
