"""Networks of the topology space: the weight-sharing supernet, discrete networks, and
parameter/FLOP counting in the benchmark's units."""

from harness.supernet.counting import (
    ModelCost,
    count_flops,
    count_params,
    model_cost,
    tss_flop_counts,
    tss_param_counts,
)
from harness.supernet.ops import OP_NAMES, ReLUConvBN, ResNetBasicBlock, make_op
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
    "TssNetwork",
    "TssSuperNet",
    "arch_ops",
    "count_flops",
    "count_params",
    "make_op",
    "model_cost",
    "network_from_supernet",
    "tss_flop_counts",
    "tss_param_counts",
]
