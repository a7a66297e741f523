"""Mathematics of the distillation losses: identities, limits, masking and numerics."""

from __future__ import annotations

import json
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from distill.losses import (
    TAID,
    action_loss,
    cross_entropy,
    forward_kl,
    jsd,
    reverse_kl,
    skew_forward_kl,
    skew_reverse_kl,
)

# Every KL-family loss as f(student_logits, teacher_probs, mask=None, temperature=1.0).
SOFT = {
    "fkl": forward_kl,
    "rkl": reverse_kl,
    "jsd0": partial(jsd, beta=0.0),
    "jsd.3": partial(jsd, beta=0.3),
    "jsd.5": partial(jsd, beta=0.5),
    "jsd1": partial(jsd, beta=1.0),
    "skew_fkl0": partial(skew_forward_kl, alpha=0.0),
    "skew_fkl.1": partial(skew_forward_kl, alpha=0.1),
    "skew_rkl0": partial(skew_reverse_kl, alpha=0.0),
    "skew_rkl.1": partial(skew_reverse_kl, alpha=0.1),
}
NAMES = ("fkl", "rkl", "jsd", "skew_fkl", "skew_rkl", "taid")


def _rand(shape=(4, 6, 7), seed=0, dtype=torch.float32, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=dtype)
    probs = torch.softmax(scale * torch.randn(*shape, generator=g, dtype=dtype), -1)
    target = torch.randint(0, shape[-1], shape[:-1], generator=g)
    return logits, probs, target


def _taid_loss(t):
    taid = TAID(t_start=t, t_end=1.0, total_steps=10)
    return lambda s, p, mask=None, temperature=1.0: taid(s, p, mask)


def _all_soft():
    return {**SOFT, "taid.4": _taid_loss(0.4), "taid1": _taid_loss(1.0)}


# ------------------------------------------------------------------ basic identities


@pytest.mark.parametrize("name", sorted(_all_soft()))
def test_zero_when_student_equals_teacher(name):
    _, p, _ = _rand()
    p = p.clone()
    p[..., 0] = 0.0  # exact zeros, student logit -inf there
    p = p / p.sum(-1, keepdim=True)
    loss = _all_soft()[name](torch.log(p), p)
    assert abs(loss.item()) < 1e-6


@pytest.mark.parametrize("name", sorted(_all_soft()))
@pytest.mark.parametrize("seed", range(3))
def test_nonnegative(name, seed):
    s, p, _ = _rand(seed=seed)
    assert _all_soft()[name](s, p).item() > 0


def test_forward_and_reverse_kl_by_hand():
    p, q = [0.7, 0.2, 0.1, 0.0], [0.4, 0.4, 0.1, 0.1]
    fkl = sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)
    rkl = sum(b * math.log(b / a) for a, b in zip(p, q) if b > 0 and a > 0)  # a=0 -> floor
    logits = torch.log(torch.tensor([q])) + 3.0  # softmax is shift-invariant
    teacher = torch.tensor([p])
    assert forward_kl(logits, teacher).item() == pytest.approx(fkl, rel=1e-5)
    kl_div = F.kl_div(torch.log_softmax(logits, -1), teacher, reduction="batchmean")
    torch.testing.assert_close(forward_kl(logits, teacher), kl_div)
    # reverse KL is infinite where the teacher has 0 and the student mass; floored, it is finite
    r = reverse_kl(logits, teacher).item()
    assert rkl < r < rkl + 0.1 * 81 and math.isfinite(r)
    p2 = [0.6, 0.3, 0.1]
    q2 = [0.2, 0.5, 0.3]
    rkl2 = sum(b * math.log(b / a) for a, b in zip(p2, q2))
    r2 = reverse_kl(torch.log(torch.tensor(q2)), torch.tensor(p2)).item()
    assert r2 == pytest.approx(rkl2, rel=1e-5)


def test_mean_over_positions():
    s, p, _ = _rand(shape=(3, 5))
    rows = torch.stack([forward_kl(s[i], p[i]) for i in range(3)])
    torch.testing.assert_close(forward_kl(s, p), rows.mean())


# ------------------------------------------------------------------------------ JSD


def test_jsd_ends_are_exact_kls():
    s, p, _ = _rand()
    assert torch.equal(jsd(s, p, beta=0.0), forward_kl(s, p))
    assert torch.equal(jsd(s, p, beta=1.0), reverse_kl(s, p))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_jsd_approaches_ends(dtype):
    s, p, _ = _rand(dtype=dtype)
    torch.testing.assert_close(jsd(s, p, beta=1e-4), forward_kl(s, p), rtol=1e-2, atol=0)
    torch.testing.assert_close(jsd(s, p, beta=1 - 1e-4), reverse_kl(s, p), rtol=1e-2, atol=0)
    # and the two ends really differ, so the check above means something
    assert not torch.allclose(forward_kl(s, p), reverse_kl(s, p), rtol=5e-2)


def test_jsd_is_scaled_generalised_jsd():
    p = torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    for beta in (0.2, 0.5, 0.9):
        m = beta * p + (1 - beta) * q
        kl_pm = sum(a * math.log(a / c) for a, c in zip(p.tolist(), m.tolist()) if a > 0)
        kl_qm = sum(b * math.log(b / c) for b, c in zip(q.tolist(), m.tolist()) if b > 0)
        expected = (beta * kl_pm + (1 - beta) * kl_qm) / (beta * (1 - beta))
        assert jsd(torch.log(q), p, beta=beta).item() == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------ skew


def test_skew_alpha_zero_is_plain_kl_and_alpha_one_is_zero():
    s, p, _ = _rand()
    assert torch.equal(skew_forward_kl(s, p, alpha=0.0), forward_kl(s, p))
    assert torch.equal(skew_reverse_kl(s, p, alpha=0.0), reverse_kl(s, p))
    assert skew_forward_kl(s, p, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert skew_reverse_kl(s, p, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_skew_by_hand():
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    q = torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
    a = 0.1
    mf, mr = a * p + (1 - a) * q, a * q + (1 - a) * p
    expected_f = (p * (p / mf).log()).sum().item()
    expected_r = (q * (q / mr).log()).sum().item()
    assert skew_forward_kl(q.log(), p, alpha=a).item() == pytest.approx(expected_f, rel=1e-9)
    assert skew_reverse_kl(q.log(), p, alpha=a).item() == pytest.approx(expected_r, rel=1e-9)


# ---------------------------------------------------------------------------- masking


def _every_loss(s, p, y, mask):
    out = {k: f(s, p, mask=mask) for k, f in _all_soft().items()}
    out["ce"] = cross_entropy(s, y, mask, label_smoothing=0.1)
    for name in NAMES:
        out[f"action_{name}"] = action_loss(name, s, p, y, mask, taid=TAID(total_steps=5))
    return out


def test_masked_rows_do_not_count():
    s, p, y = _rand()
    mask = torch.rand(s.shape[:-1], generator=torch.Generator().manual_seed(1)) > 0.4
    before = _every_loss(s, p, y, mask)
    s2, p2, y2 = s.clone(), p.clone(), y.clone()
    s2[~mask] = float("nan")  # padding may be garbage
    p2[~mask] = 123.0
    y2[~mask] = 10_000
    after = _every_loss(s2, p2, y2, mask)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    # the masked mean equals the plain mean over the kept rows
    torch.testing.assert_close(forward_kl(s, p, mask=mask), forward_kl(s[mask], p[mask]))
    torch.testing.assert_close(cross_entropy(s, y, mask), cross_entropy(s[mask], y[mask]))


def test_float_mask_weights():
    s, p, _ = _rand(shape=(3, 5))
    w = torch.tensor([1.0, 0.0, 3.0])
    expected = (forward_kl(s[0], p[0]) + 3 * forward_kl(s[2], p[2])) / 4
    torch.testing.assert_close(forward_kl(s, p, mask=w), expected)


def test_all_masked_is_zero_with_working_backward():
    s, p, y = _rand()
    s.requires_grad_(True)
    mask = torch.zeros(s.shape[:-1], dtype=torch.bool)
    for k, loss in _every_loss(s, p, y, mask).items():
        assert loss.item() == 0.0, k
        (grad,) = torch.autograd.grad(loss, s)
        assert torch.equal(grad, torch.zeros_like(s)), k


# --------------------------------------------------------------------------- numerics


def test_finite_gradients_with_neg_inf_logits_and_zero_teacher_probs():
    s, p, y = _rand(shape=(5, 6))
    s = s.clone()
    s[:, 0] = float("-inf")  # action 0 forbidden for the student everywhere
    s[4, :] = float("-inf")  # a row with nothing allowed
    p = p.clone()
    p[:, 1] = 0.0  # the teacher never takes action 1
    p[0] = torch.tensor([0.5, 0.0, 0.5, 0.0, 0.0, 0.0])  # teacher mass on a forbidden action
    p = p / p.sum(-1, keepdim=True)
    y[1] = 0  # a hard label on a forbidden action
    s = s.requires_grad_(True)
    for k, loss in _every_loss(s, p, y, None).items():
        (grad,) = torch.autograd.grad(loss, s)
        assert torch.isfinite(loss), k
        assert torch.isfinite(grad).all(), k
        assert torch.equal(grad[:, 0], torch.zeros(5)), k  # no gradient into -inf logits


def test_zero_teacher_probs_contribute_nothing():
    # p_v = 0 terms are exactly 0 in KL(p||q), whatever q_v is
    s = torch.tensor([[1.0, 2.0, -3.0, 0.5]])
    p = torch.tensor([[0.6, 0.4, 0.0, 0.0]])
    s2 = s.clone()
    s2[0, 2:] = torch.tensor([-50.0, 7.0])
    q, q2 = torch.softmax(s, -1)[0, :2], torch.softmax(s2, -1)[0, :2]
    # difference only through the normaliser, i.e. through log q of the supported entries
    expected_diff = (p[0, :2] * (q.log() - q2.log())).sum()
    torch.testing.assert_close(forward_kl(s2, p) - forward_kl(s, p), expected_diff)


def test_half_precision_inputs_are_upcast():
    s, p, _ = _rand()
    out = forward_kl(s.half(), p.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, forward_kl(s.half().float(), p.half().float()))


# ------------------------------------------------------------------------ temperature


@pytest.mark.parametrize("name", sorted(SOFT))
def test_large_temperature_makes_loss_vanish(name):
    s, p, _ = _rand()
    f = SOFT[name]
    assert f(s, p, temperature=1e4).item() < 1e-6
    assert f(s, p, temperature=1e4).item() < f(s, p).item()


def test_temperature_tempers_both_sides():
    s, p, _ = _rand(dtype=torch.float64)
    T = 2.5
    tempered = p ** (1 / T)
    tempered = tempered / tempered.sum(-1, keepdim=True)
    torch.testing.assert_close(forward_kl(s, p, temperature=T), forward_kl(s / T, tempered))
    torch.testing.assert_close(jsd(s, p, 0.3, temperature=T), jsd(s / T, tempered, 0.3))
    # equivalent to softmax(teacher_logits / T) when p = softmax(teacher_logits)
    teacher_logits = torch.randn(p.shape, dtype=torch.float64)
    torch.testing.assert_close(
        reverse_kl(s, torch.softmax(teacher_logits, -1), temperature=T),
        reverse_kl(s / T, torch.softmax(teacher_logits / T, -1)))


def test_temperature_keeps_teacher_zeros():
    s = torch.zeros(1, 3)
    p = torch.tensor([[0.9, 0.1, 0.0]])
    # at huge T the teacher becomes uniform on its support {0, 1}, not on all three actions
    assert forward_kl(s, p, temperature=1e6).item() == pytest.approx(math.log(3 / 2), rel=1e-4)


# ---------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_matches_torch(smoothing):
    s, _, y = _rand()
    y = y.clone()
    y[0, :2] = -100
    expected = F.cross_entropy(s.reshape(-1, s.shape[-1]), y.reshape(-1),
                               label_smoothing=smoothing, ignore_index=-100)
    torch.testing.assert_close(cross_entropy(s, y, label_smoothing=smoothing), expected)
    y[0, :2] = 3
    expected = F.cross_entropy(s.reshape(-1, s.shape[-1]), y.reshape(-1),
                               label_smoothing=smoothing, ignore_index=3)
    torch.testing.assert_close(cross_entropy(s, y, label_smoothing=smoothing, ignore_index=3),
                               expected)


# ------------------------------------------------------------------------- dispatcher


@pytest.mark.parametrize("name", NAMES)
def test_action_loss_falls_back_to_ce_for_missing_teacher_rows(name):
    s, p, y = _rand(shape=(6, 5))
    p = p.clone()
    missing = torch.tensor([False, True, False, True, True, False])
    p[missing] = 0.0
    mask = torch.tensor([True, True, True, True, False, True])
    kw = dict(beta=0.3, alpha=0.2, temperature=2.0, label_smoothing=0.1)
    taid = TAID(t_start=0.5, total_steps=10)
    soft_fn = {
        "fkl": partial(forward_kl, temperature=2.0),
        "rkl": partial(reverse_kl, temperature=2.0),
        "jsd": partial(jsd, beta=0.3, temperature=2.0),
        "skew_fkl": partial(skew_forward_kl, alpha=0.2, temperature=2.0),
        "skew_rkl": partial(skew_reverse_kl, alpha=0.2, temperature=2.0),
        "taid": lambda s_, p_: taid(s_, p_),
    }[name]
    per_row = [
        cross_entropy(s[i], y[i], label_smoothing=0.1) if missing[i] else soft_fn(s[i], p[i])
        for i in range(6) if mask[i]
    ]
    expected = torch.stack(per_row).mean()
    got = action_loss(name, s, p, y, mask, taid=taid, **kw)
    torch.testing.assert_close(got, expected)


def test_action_loss_ce_and_errors():
    s, p, y = _rand()
    torch.testing.assert_close(action_loss("ce", s, p, y, label_smoothing=0.1),
                               cross_entropy(s, y, label_smoothing=0.1))
    torch.testing.assert_close(action_loss("fkl", s, None, y), cross_entropy(s, y))
    torch.testing.assert_close(action_loss("fkl", s, p, y), forward_kl(s, p))
    with pytest.raises(ValueError):
        action_loss("kl", s, p, y)
    with pytest.raises(ValueError):
        action_loss("taid", s, p, y)


# ------------------------------------------------------------------------------- TAID


def test_taid_schedule():
    taid = TAID(t_start=0.4, t_end=1.0, total_steps=50, alpha=0.05)
    assert taid.t == 0.4
    g = torch.Generator().manual_seed(0)
    ts = [taid.t]
    for n in range(60):
        loss = 2.0 * math.exp(-n / 10) + 0.3 * torch.rand((), generator=g).item()
        ts.append(taid.step(loss))
        assert taid.t == ts[-1]
        assert taid.t >= taid.linear_t(n + 1) - 1e-12
    assert all(b >= a for a, b in zip(ts, ts[1:]))
    assert ts[50] == 1.0 and ts[-1] == 1.0
    assert ts[1] > 0.4
    # the adaptive term runs ahead of the linear floor while the loss falls
    assert ts[5] > taid.linear_t(5)


def test_taid_reaches_end_even_if_loss_worsens():
    taid = TAID(t_start=0.2, t_end=0.9, total_steps=7)
    for n in range(7):
        taid.step(1.0 + n)  # loss keeps rising
    assert taid.t == 0.9
    taid.step(float("nan"))
    assert taid.t == 0.9


def test_taid_target_and_loss():
    s, p, _ = _rand()
    p = p.clone()
    p[..., 2] = 0.0
    p = p / p.sum(-1, keepdim=True)
    one = TAID(t_start=1.0, t_end=1.0)
    torch.testing.assert_close(one(s, p), forward_kl(s, p))
    zero = TAID(t_start=0.0, t_end=1.0)
    assert zero(s, p).item() == pytest.approx(0.0, abs=1e-6)
    half = TAID(t_start=0.5)
    q = torch.softmax(s, -1)
    expected = torch.where(p > 0, (q.sqrt() * p.sqrt()), torch.zeros(()))
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(half.target(s, p), expected)
    # the target is detached: the gradient is that of KL(p_t || q) with p_t fixed
    s1 = s.clone().requires_grad_(True)
    half(s1, p).backward()
    torch.testing.assert_close(s1.grad, (torch.softmax(s, -1) - expected) / s[..., 0].numel())


def test_taid_state_dict_json_round_trip():
    a = TAID(t_start=0.4, total_steps=20, alpha=0.01)
    for loss in (3.0, 2.5, 2.4):
        a.step(loss)
    state = json.loads(json.dumps(a.state_dict()))
    b = TAID(t_start=0.4, total_steps=20, alpha=0.01)
    b.load_state_dict(state)
    assert b.state_dict() == a.state_dict()
    for loss in (2.0, 2.2, 1.0):
        assert a.step(loss) == b.step(loss)
    fresh = TAID()
    assert json.loads(json.dumps(fresh.state_dict()))["prev_loss"] is None
