"""Distillation objectives: pure functions over torch tensors (no module state).

Notation: ``q = softmax(student_logits / T)`` is the student, ``p`` the teacher. The teacher
comes as probabilities; a temperature tempers it as ``p^(1/T)`` renormalised over its support
(equal to ``softmax(teacher_logits / T)`` when ``p = softmax(teacher_logits)``).
``KL(a || b) = sum_v a_v (log a_v - log b_v)``.

Shapes: ``student_logits`` and ``teacher_probs`` are ``[..., V]``, ``target`` is ``[...]`` of
int ids, ``mask`` is ``[...]`` (bool, or float weights; 0/False rows do not count). Every
function returns the (weighted) mean over unmasked positions as a 0-d tensor, which is 0 with
a gradient path when nothing is unmasked.

Numerics: computed in at least float32 (half inputs are upcast, float64 stays float64);
``-inf`` student logits (forbidden actions) give ``q = 0`` exactly; a zero probability
contributes exactly 0 (``0 log 0 = 0``) with zero gradient; log-probabilities are floored at
:data:`LOG_FLOOR`, so where the teacher puts mass on an action the student forbids (or the
reverse), the KL is large but finite. Masked rows are blanked before any arithmetic, so padding
(even NaN) cannot leak into the value or the gradient.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_FLOOR = -80.0
"""Smallest log-probability used in a product (``e^-80 ≈ 1.8e-35``, a normal float32)."""
_MIN_P = math.exp(LOG_FLOOR)

ACTION_LOSSES = ("ce", "fkl", "rkl", "jsd", "skew_fkl", "skew_rkl", "taid")
ActionLossName = Literal["ce", "fkl", "rkl", "jsd", "skew_fkl", "skew_rkl", "taid"]


# --------------------------------------------------------------------------- helpers


def _float(x: Tensor) -> Tensor:
    """``x`` as float32, or float64 if it already is."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _weights(mask: Tensor | None, like: Tensor) -> Tensor:
    """Row weights ``[...]`` for rows of ``like`` (``[..., V]``): 1 everywhere without a mask."""
    shape = like.shape[:-1]
    if mask is None:
        return torch.ones(shape, dtype=like.dtype, device=like.device)
    return mask.to(device=like.device, dtype=like.dtype).expand(shape)


def _blank(x: Tensor, keep: Tensor) -> Tensor:
    """``x`` with the rows (last dim) where ``keep`` is False replaced by zeros."""
    return torch.where(keep.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def _mean(rows: Tensor, w: Tensor) -> Tensor:
    """``sum(w * rows) / sum(w)`` over rows with ``w > 0``; 0 (still differentiable) if none."""
    rows = torch.where(w > 0, rows, torch.zeros((), dtype=rows.dtype, device=rows.device))
    total = w.sum()
    return (rows * w).sum() / torch.where(total > 0, total, torch.ones_like(total))


def _student(logits: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """``(q, log q)`` with ``q = softmax(logits / T)``.

    ``-inf`` logits give ``q = 0`` exactly; ``log q`` is floored at :data:`LOG_FLOOR`
    (zero gradient below it). A row of only ``-inf`` is all zeros rather than NaN.
    """
    z = _float(logits) / temperature
    dead = torch.isneginf(z)
    z = torch.where(dead.all(-1, keepdim=True), torch.zeros((), dtype=z.dtype, device=z.device), z)
    logq = F.log_softmax(z, dim=-1)
    q = logq.exp().masked_fill(dead, 0.0)
    return q, logq.clamp_min(LOG_FLOOR).masked_fill(dead, LOG_FLOOR)


def _teacher(probs: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """``(p, log p)`` with ``p ∝ probs^(1/T)`` on the support ``probs > 0``.

    Zeros stay exact zeros at every temperature; a row without support (sum 0) stays all
    zeros. ``log p`` is floored at :data:`LOG_FLOOR`.
    """
    probs = _float(probs)
    support = probs > 0
    logw = torch.log(probs.clamp_min(_MIN_P)) / temperature
    logw = logw - logw.amax(-1, keepdim=True)
    w = logw.exp() * support
    p = w / w.sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return p, torch.log(p.clamp_min(_MIN_P))


def _kl(a: Tensor, log_a: Tensor, log_b: Tensor) -> Tensor:
    """``KL(a || b)`` per row; entries with ``a = 0`` contribute exactly 0."""
    return (a * (log_a - log_b)).sum(-1)


def _log_mix(w: float, log_a: Tensor, log_b: Tensor) -> Tensor:
    """``log(w a + (1 - w) b)``, exact at ``w = 0`` and ``w = 1``."""
    if w <= 0.0:
        return log_b
    if w >= 1.0:
        return log_a
    return torch.logaddexp(log_a + math.log(w), log_b + math.log1p(-w))


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


# ------------------------------------------------------------------ per-row losses


def _ce_rows(logits: Tensor, target: Tensor, valid: Tensor, label_smoothing: float,
             temperature: float) -> Tensor:
    _, logq = _student(logits, temperature)
    idx = torch.where(valid, target, torch.zeros_like(target)).long()
    nll = -logq.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    if label_smoothing > 0:
        nll = (1.0 - label_smoothing) * nll - label_smoothing * logq.mean(-1)
    return nll


def _fkl_rows(q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor]) -> Tensor:
    (_, lq), (p, lp) = q_lq, p_lp
    return _kl(p, lp, lq)


def _rkl_rows(q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor]) -> Tensor:
    (q, lq), (_, lp) = q_lq, p_lp
    return _kl(q, lq, lp)


def _jsd_rows(q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor], beta: float) -> Tensor:
    if beta <= 0.0:
        return _fkl_rows(q_lq, p_lp)
    if beta >= 1.0:
        return _rkl_rows(q_lq, p_lp)
    (q, lq), (p, lp) = q_lq, p_lp
    lm = _log_mix(beta, lp, lq)
    return (beta * _kl(p, lp, lm) + (1.0 - beta) * _kl(q, lq, lm)) / (beta * (1.0 - beta))


def _skew_fkl_rows(q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor],
                   alpha: float) -> Tensor:
    (_, lq), (p, lp) = q_lq, p_lp
    return _kl(p, lp, _log_mix(alpha, lp, lq))


def _skew_rkl_rows(q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor],
                   alpha: float) -> Tensor:
    (q, lq), (_, lp) = q_lq, p_lp
    return _kl(q, lq, _log_mix(alpha, lq, lp))


def _soft(rows_fn, student_logits: Tensor, teacher_probs: Tensor, mask: Tensor | None,
          temperature: float, *args: float) -> Tensor:
    """Masked mean of ``rows_fn((q, log q), (p, log p), *args)``."""
    _check_temperature(temperature)
    logits = _float(student_logits)
    w = _weights(mask, logits)
    keep = w > 0
    q_lq = _student(_blank(logits, keep), temperature)
    p_lp = _teacher(_blank(teacher_probs.to(logits.device), keep), temperature)
    return _mean(rows_fn(q_lq, p_lp, *args), w)


# ------------------------------------------------------------------------ public API


def cross_entropy(student_logits: Tensor, target: Tensor, mask: Tensor | None = None,
                  label_smoothing: float = 0.0, ignore_index: int = -100,
                  temperature: float = 1.0) -> Tensor:
    """Cross-entropy to hard labels, ``(1-ε)(-log q_y) + ε mean_v(-log q_v)``.

    ``ε = label_smoothing``; positions with ``target == ignore_index`` do not count (as in
    :func:`torch.nn.functional.cross_entropy`, which this equals for finite logits).
    """
    _check_temperature(temperature)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    logits = _float(student_logits)
    target = target.to(logits.device)
    w = _weights(mask, logits) * (target != ignore_index)
    keep = w > 0
    return _mean(_ce_rows(_blank(logits, keep), target, keep, label_smoothing, temperature), w)


def forward_kl(student_logits: Tensor, teacher_probs: Tensor, mask: Tensor | None = None,
               temperature: float = 1.0) -> Tensor:
    """Forward KL, ``KL(p || q) = sum_v p_v (log p_v - log q_v)`` (mean-seeking)."""
    return _soft(_fkl_rows, student_logits, teacher_probs, mask, temperature)


def reverse_kl(student_logits: Tensor, teacher_probs: Tensor, mask: Tensor | None = None,
               temperature: float = 1.0) -> Tensor:
    """Reverse KL, ``KL(q || p) = sum_v q_v (log q_v - log p_v)`` (mode-seeking)."""
    return _soft(_rkl_rows, student_logits, teacher_probs, mask, temperature)


def jsd(student_logits: Tensor, teacher_probs: Tensor, beta: float = 0.5,
        mask: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Generalised Jensen-Shannon divergence (GKD, Agarwal et al. 2024), rescaled.

    With ``m = β p + (1-β) q``, GKD's ``JSD(β) = β KL(p || m) + (1-β) KL(q || m)`` vanishes at
    both ends, so this returns it divided by ``β(1-β)``:

        jsd(β) = [β KL(p || m) + (1-β) KL(q || m)] / (β (1-β)),   0 < β < 1.

    Limits (``KL(q || m) ≈ β²χ²(p || q)/2`` as β→0, and symmetrically as β→1):

    * ``β → 0``: ``jsd → KL(p || q)``, the forward KL; ``jsd(0)`` returns it exactly.
    * ``β → 1``: ``jsd → KL(q || p)``, the reverse KL; ``jsd(1)`` returns it exactly.
    * ``β = 1/2``: ``4 ×`` the classic Jensen-Shannon divergence.

    The ``1/(β(1-β))`` factor amplifies float32 rounding for β within ~1e-3 of an end; use the
    exact ends (or float64 inputs) there.
    """
    _check_unit("beta", beta)
    return _soft(_jsd_rows, student_logits, teacher_probs, mask, temperature, beta)


def skew_forward_kl(student_logits: Tensor, teacher_probs: Tensor, alpha: float = 0.1,
                    mask: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Skew forward KL (DistiLLM, Ko et al. 2024): ``KL(p || α p + (1-α) q)``.

    ``α = 0`` is :func:`forward_kl`; ``α = 1`` is 0. The mixture bounds the loss by
    ``-log α`` (``p / m ≤ 1/α``), even where the student puts no mass.
    """
    _check_unit("alpha", alpha)
    return _soft(_skew_fkl_rows, student_logits, teacher_probs, mask, temperature, alpha)


def skew_reverse_kl(student_logits: Tensor, teacher_probs: Tensor, alpha: float = 0.1,
                    mask: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Skew reverse KL (DistiLLM): ``KL(q || α q + (1-α) p)``; ``α = 0`` is :func:`reverse_kl`.

    ``α = 1`` is 0; the mixture bounds the loss by ``-log α`` (``q / m ≤ 1/α``).
    """
    _check_unit("alpha", alpha)
    return _soft(_skew_rkl_rows, student_logits, teacher_probs, mask, temperature, alpha)


class TAID:
    """TAID, Temporally Adaptive Interpolated Distillation (Shing et al., ICLR 2025).

    The target interpolates in log space between the detached student and the teacher,

        p_t = softmax((1-t) log q.detach() + t log p),

    and the loss is the forward KL ``KL(p_t || q)`` (``t = 1``: plain :func:`forward_kl`;
    teacher zeros stay zeros for ``t > 0``). Temperature-free: no temperature is applied.

    ``t`` starts at ``t_start`` and moves to ``t_end`` with the paper's adaptive rule; after
    the n-th :meth:`step` with loss ``J_n``:

        δ_n     = (J_{n-1} - J_n) / |J_{n-1}|         (relative improvement; 0 at the first step)
        m_n     = μ m_{n-1} + (1-μ) δ_n               (momentum, μ = ``momentum``)
        t_{n+1} = min(t_end, max(t_lin(n), t_n + α σ(m_n) (t_end - t_n)))
        t_lin(n) = t_start + (t_end - t_start) min(1, n / total_steps)

    so ``t`` never decreases, moves faster while the student improves quickly, and reaches
    ``t_end`` by ``total_steps`` whatever the losses. State is four JSON-able numbers.
    """

    def __init__(self, t_start: float = 0.4, t_end: float = 1.0, total_steps: int = 1000,
                 alpha: float = 5e-4, momentum: float = 0.99) -> None:
        if not 0.0 <= t_start <= t_end <= 1.0:
            raise ValueError(f"need 0 <= t_start <= t_end <= 1, got {t_start}, {t_end}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        _check_unit("alpha", alpha)
        _check_unit("momentum", momentum)
        self.t_start, self.t_end, self.total_steps = float(t_start), float(t_end), int(total_steps)
        self.alpha, self.momentum = float(alpha), float(momentum)
        self._t = self.t_start
        self._n = 0
        self._m = 0.0
        self._prev: float | None = None

    @property
    def t(self) -> float:
        """Current interpolation weight of the teacher."""
        return self._t

    def linear_t(self, n: int) -> float:
        """The floor schedule ``t_lin(n)``: linear from ``t_start`` (n=0) to ``t_end``."""
        if n >= self.total_steps:
            return self.t_end
        return self.t_start + (self.t_end - self.t_start) * n / self.total_steps

    def target(self, student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
        """The interpolated target ``p_t`` (no gradient), shape ``[..., V]``."""
        return self._target(_student(student_logits, 1.0), _teacher(teacher_probs, 1.0))

    def _target(self, q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor]) -> Tensor:
        (q, lq), (p, lp) = q_lq, p_lp
        if self._t <= 0.0:
            return q.detach()
        if self._t >= 1.0:
            return p.detach()
        logw = (1.0 - self._t) * lq.detach() + self._t * lp.detach()
        w = (logw - logw.amax(-1, keepdim=True)).exp() * (p > 0)
        return w / w.sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)

    def _rows(self, q_lq: tuple[Tensor, Tensor], p_lp: tuple[Tensor, Tensor]) -> Tensor:
        pt = self._target(q_lq, p_lp)
        return _kl(pt, torch.log(pt.clamp_min(_MIN_P)), q_lq[1])

    def __call__(self, student_logits: Tensor, teacher_probs: Tensor,
                 mask: Tensor | None = None) -> Tensor:
        """``KL(p_t || q)``, the masked mean over positions."""
        return _soft(lambda q_lq, p_lp: self._rows(q_lq, p_lp), student_logits, teacher_probs,
                     mask, 1.0)

    def step(self, loss_value: float) -> float:
        """Advance one optimisation step given its loss; returns the new ``t``.

        A non-finite loss leaves the momentum alone (t still follows the linear floor).
        """
        loss = float(loss_value)
        self._n += 1
        t = self._t
        if math.isfinite(loss):
            prev = self._prev
            delta = 0.0 if prev is None else (prev - loss) / max(abs(prev), 1e-12)
            self._m = self.momentum * self._m + (1.0 - self.momentum) * delta
            sig = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, self._m))))
            t = t + self.alpha * sig * (self.t_end - t)
            self._prev = loss
        self._t = min(self.t_end, max(self._t, t, self.linear_t(self._n)))
        return self._t

    def state_dict(self) -> dict[str, float | int | None]:
        """JSON-able state: ``t``, ``step``, ``momentum_value``, ``prev_loss`` (None at first)."""
        return {"t": self._t, "step": self._n, "momentum_value": self._m, "prev_loss": self._prev}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        """Restore what :meth:`state_dict` returned (e.g. after a JSON round trip)."""
        self._t = float(state["t"])
        self._n = int(state["step"])
        self._m = float(state["momentum_value"])
        prev = state.get("prev_loss")
        self._prev = None if prev is None else float(prev)


def action_loss(name: ActionLossName, student_logits: Tensor, teacher_probs: Tensor | None,
                target: Tensor, mask: Tensor | None = None, *, beta: float = 0.5,
                alpha: float = 0.1, temperature: float = 1.0, label_smoothing: float = 0.0,
                taid: TAID | None = None, ignore_index: int = -100) -> Tensor:
    """The action-head loss named by ``train.action_loss``.

    ``"ce"``: :func:`cross_entropy` on ``target``. Otherwise the soft loss on ``teacher_probs``
    (``"fkl"``, ``"rkl"``, ``"jsd"`` with ``beta``, ``"skew_fkl"``/``"skew_rkl"`` with
    ``alpha``, ``"taid"`` with the stateful ``taid``, which ignores ``temperature``), for
    rows whose teacher probabilities sum to more than 0. Rows whose teacher row sums to 0 (no
    teacher distribution), or all rows if ``teacher_probs`` is None, fall back to
    cross-entropy on ``target`` (untempered, with ``label_smoothing``). The result is the
    mean over all counted rows of both kinds (unmasked, and for CE rows
    ``target != ignore_index``).
    """
    if name not in ACTION_LOSSES:
        raise ValueError(f"unknown action loss {name!r}; expected one of {ACTION_LOSSES}")
    if name == "ce" or teacher_probs is None:
        return cross_entropy(student_logits, target, mask, label_smoothing, ignore_index)
    if name == "taid" and taid is None:
        raise ValueError("action loss 'taid' needs a TAID instance (taid=...)")
    _check_temperature(temperature)
    _check_unit("beta", beta)
    _check_unit("alpha", alpha)

    logits = _float(student_logits)
    tp = _float(teacher_probs.to(logits.device))
    target = target.to(logits.device)
    w = _weights(mask, logits)
    soft = (tp.sum(-1) > 0) & (w > 0)
    hard = ~soft & (target != ignore_index) & (w > 0)
    w = w * (soft | hard)
    keep = w > 0
    logits, tp = _blank(logits, keep), _blank(tp, soft)

    if name == "taid":
        soft_rows = taid._rows(_student(logits, 1.0), _teacher(tp, 1.0))
    else:
        q_lq, p_lp = _student(logits, temperature), _teacher(tp, temperature)
        soft_rows = {
            "fkl": lambda: _fkl_rows(q_lq, p_lp),
            "rkl": lambda: _rkl_rows(q_lq, p_lp),
            "jsd": lambda: _jsd_rows(q_lq, p_lp, beta),
            "skew_fkl": lambda: _skew_fkl_rows(q_lq, p_lp, alpha),
            "skew_rkl": lambda: _skew_rkl_rows(q_lq, p_lp, alpha),
        }[name]()
    hard_rows = _ce_rows(logits, target, hard, label_smoothing, 1.0)
    return _mean(torch.where(soft, soft_rows, hard_rows), w)


__all__ = [
    "ACTION_LOSSES", "LOG_FLOOR", "TAID", "action_loss", "cross_entropy", "forward_kl", "jsd",
    "reverse_kl", "skew_forward_kl", "skew_reverse_kl",
]
