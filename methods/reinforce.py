"""REINFORCE over a factorised categorical policy, as in NATS-Bench's multi-trial baselines.

The policy holds one logit per (position, choice), initialised ``init_scale * N(0, 1)``; an
architecture is sampled position by position from the softmax. The reward is the validation
accuracy in percent, as ``simulate_train_eval`` returns it (Adam's update is nearly invariant to
the reward's scale, so dividing by 100 would change little). The baseline is a bias-corrected
exponential moving average of the rewards (momentum 0.9), updated with the new reward *before*
the advantage ``reward - baseline`` is formed, as the NATS-Bench script does. The loss
``-advantage * log p(arch)`` is minimised by one Adam step (lr 0.01, betas 0.9/0.999, eps 1e-8,
PyTorch's update rule) per query, here written in numpy. The chosen architecture is the best
validation of the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harness.protocol import BlackBoxMethod, check_config
from harness.registry import register_method
from harness.spaces import Space

FloatArray = npt.NDArray[np.float64]


@register_method
class Reinforce(BlackBoxMethod):
    """Policy-gradient search with an EMA baseline and Adam."""

    name = "reinforce"

    @dataclass(frozen=True)
    class Config:
        learning_rate: float = 0.01
        baseline_momentum: float = 0.9
        beta1: float = 0.9
        beta2: float = 0.999
        eps: float = 1e-8
        init_scale: float = 1e-3

        def __post_init__(self) -> None:
            for key in ("learning_rate", "eps", "init_scale"):
                value = getattr(self, key)
                check_config(
                    isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
                    f"reinforce: {key} must be a number > 0, got {value!r}",
                )
            for key in ("baseline_momentum", "beta1", "beta2"):
                value = getattr(self, key)
                check_config(
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and 0 <= value < 1,
                    f"reinforce: {key} must be in [0, 1), got {value!r}",
                )

    config: Config
    logits: FloatArray  # (positions, max choices)
    _mask: npt.NDArray[np.bool_] | None  # valid choices when positions differ in size
    _last: npt.NDArray[np.int64]  # largest choice id per position
    _probs: FloatArray  # softmax of the current logits
    _m: FloatArray
    _v: FloatArray
    _steps: int
    _ema: tuple[float, float]  # numerator, denominator of the bias-corrected average

    def setup(self, space: Space, rng: np.random.Generator) -> None:
        super().setup(space, rng)
        shape = (len(space.choices), max(space.choices))
        self.logits = self.config.init_scale * rng.standard_normal(shape)
        sizes = np.asarray(space.choices)
        ragged = bool((sizes != shape[1]).any())
        self._mask = (np.arange(shape[1]) < sizes[:, None]) if ragged else None
        self._last = sizes - 1
        self._probs = self._softmax()
        self._m = np.zeros(shape)
        self._v = np.zeros(shape)
        self._steps = 0
        self._ema = (0.0, 0.0)

    def probabilities(self) -> FloatArray:
        """Softmax policy, shape ``(positions, max choices)``; rows sum to 1."""
        return self._probs.copy()

    def _softmax(self) -> FloatArray:
        z = self.logits if self._mask is None else np.where(self._mask, self.logits, -np.inf)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def ask(self) -> int:
        cum = self._probs.cumsum(axis=1)
        u = self.rng.random((cum.shape[0],))
        picks = np.minimum((cum < u[:, None]).sum(axis=1), self._last)  # guard rounding
        return self.space.choices_to_index(picks)

    def baseline(self) -> float:
        """Current baseline (NaN before the first reward)."""
        num, den = self._ema
        return num / den if den > 0 else float("nan")

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        c = self.config
        num, den = self._ema
        self._ema = (
            c.baseline_momentum * num + (1 - c.baseline_momentum) * valid,
            c.baseline_momentum * den + (1 - c.baseline_momentum),
        )
        advantage = valid - self.baseline()
        picks = np.asarray(self.space.index_to_choices(arch))
        rows = np.arange(len(picks))
        grad = self._probs * advantage  # d(-adv * log p)/d logits
        grad[rows, picks] -= advantage
        self._adam(grad)

    def _adam(self, grad: FloatArray) -> None:
        c = self.config
        self._steps += 1
        self._m = c.beta1 * self._m + (1 - c.beta1) * grad
        self._v = c.beta2 * self._v + (1 - c.beta2) * grad * grad
        correction1 = 1 - c.beta1**self._steps
        correction2 = 1 - c.beta2**self._steps
        denom = np.sqrt(self._v) / np.sqrt(correction2) + c.eps
        self.logits = self.logits - (c.learning_rate / correction1) * self._m / denom
        self._probs = self._softmax()
