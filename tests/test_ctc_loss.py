"""``nn.functional.ctc_loss`` and ``nn.CTCLoss`` against torch: values and gradients with
respect to ``log_probs`` (batched and unbatched, padded and concatenated targets, repeated
labels, each reduction, impossible alignments with and without ``zero_infinity``, float32 and
float64), and the errors for bad input. Eager only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jitgrad
import jitgrad.nn.functional as F
from jitgrad.errors import ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _jg(x):
    """A torch tensor (or anything else) as jitgrad's, for the non-differentiable arguments."""
    return jitgrad.tensor(x.numpy()) if isinstance(x, torch.Tensor) else x


def _log_probs(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).log_softmax(-1)


def _both(lp, targets, il, tl, cot_seed=1, **kw):
    """(torch's loss, its gradient, jitgrad's loss, its gradient) for ``sum(loss * cot)``."""
    x = lp.detach().clone().requires_grad_()
    want = TF.ctc_loss(x, targets, il, tl, **kw)
    cot = torch.from_numpy(np.random.default_rng(cot_seed).standard_normal(
        tuple(want.shape)).astype(str(lp.dtype).split(".")[-1]))
    (wg,) = torch.autograd.grad((want * cot).sum(), x)
    jx = jitgrad.tensor(lp.detach().numpy(), requires_grad=True)
    got = F.ctc_loss(jx, _jg(targets), _jg(il), _jg(tl), **kw)
    (jgr,) = jitgrad.autograd.grad((got * jitgrad.tensor(cot.numpy())).sum(), [jx])
    return want.detach().numpy(), wg.numpy(), got.detach().numpy(), jgr.numpy()


def _close(a, b, tol):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, equal_nan=True)


# (T, N, C), padded targets, input lengths, target lengths: repeats ([1, 1], [3, 3, 3]),
# an empty target, a short input, a label equal to a neighbour after a blank
CASES = {
    "basic": ((6, 3, 5), [[1, 2, 3], [2, 2, 0], [4, 0, 0]], [6, 5, 4], [3, 2, 1]),
    "repeats": ((8, 2, 4), [[3, 3, 3, 1], [1, 2, 1, 2]], [8, 7], [3, 4]),
    "empty target": ((5, 2, 3), [[1, 2], [0, 0]], [5, 3], [2, 0]),
    "one frame": ((4, 2, 3), [[1], [2]], [1, 4], [1, 1]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("lengths", ["tensor", "list"])
def test_padded_matches_torch(case, reduction, lengths):
    shape, targets, il, tl = CASES[case]
    if lengths == "tensor":
        il, tl = torch.tensor(il), torch.tensor(tl)
    want, wg, got, gg = _both(_log_probs(shape), torch.tensor(targets), il, tl,
                              reduction=reduction)
    _close(got, want, 1e-10)
    _close(gg, wg, 1e-10)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_concatenated_targets(reduction):
    shape, targets, il, tl = CASES["basic"]
    flat = torch.tensor([v for row, n in zip(targets, tl) for v in row[:n]])
    want, wg, got, gg = _both(_log_probs(shape), flat, torch.tensor(il), torch.tensor(tl),
                              reduction=reduction)
    _close(got, want, 1e-10)
    _close(gg, wg, 1e-10)
    # the same as the padded form
    pad = F.ctc_loss(jitgrad.tensor(_log_probs(shape).numpy()), jitgrad.tensor(targets), il, tl,
                     reduction=reduction)
    _close(pad.numpy(), got, 1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("form", ["concatenated", "padded", "0-d lengths"])
def test_unbatched(reduction, form):
    lp = _log_probs((7, 4))
    targets, il, tl = torch.tensor([1, 3, 3]), [7], [3]
    if form == "padded":
        targets = targets[None]
    elif form == "0-d lengths":
        il, tl = torch.tensor(7), torch.tensor(3)
    want, wg, got, gg = _both(lp, targets, il, tl, reduction=reduction)
    assert got.shape == ()
    _close(got, want, 1e-10)
    _close(gg, wg, 1e-10)


def test_blank_not_zero():
    lp = _log_probs((6, 2, 4))
    targets = torch.tensor([[0, 1, 0], [2, 2, 1]])
    want, wg, got, gg = _both(lp, targets, [6, 6], [3, 3], blank=3, reduction="none")
    _close(got, want, 1e-10)
    _close(gg, wg, 1e-10)


# sample 0 needs 6 frames for [1, 1, 1] (two blanks between the repeats) but has 3; sample 1
# has no frames and a non-empty target; sample 2 no frames and an empty one (loss 0)
IMPOSSIBLE = ((3, 3, 4), [[1, 1, 1], [2, 3, 0], [1, 0, 0]], [3, 0, 0], [3, 2, 0])


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_impossible_alignment(zero_infinity, reduction):
    shape, targets, il, tl = IMPOSSIBLE
    lp = _log_probs(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning from the inf/NaN handling
        want, wg, got, gg = _both(lp, torch.tensor(targets), il, tl, reduction=reduction,
                                  zero_infinity=zero_infinity)
    _close(got, want, 1e-10)
    _close(gg, wg, 1e-10)  # NaN where torch's is (the impossible sample's frames), or 0
    if zero_infinity:
        assert np.isfinite(got).all() and np.isfinite(gg).all()
    else:
        assert np.isinf(got).any() and np.isnan(gg).any()
    if reduction == "none":
        assert got[2] == 0.0


def test_impossible_alone_and_feasible_rows_unaffected():
    lp = _log_probs((4, 2, 3))
    targets = torch.tensor([[1, 1, 1], [1, 2, 0]])
    want, wg, got, gg = _both(lp, targets, [4, 4], [3, 2], reduction="none")
    assert np.isinf(got[0]) and np.isfinite(got[1])
    assert np.isnan(gg[:, 0]).all() and np.isfinite(gg[:, 1]).all()
    _close(gg, wg, 1e-10)


def test_float32():
    lp = _log_probs((30, 4, 6), dtype=torch.float32, seed=3)
    targets = torch.tensor([[1, 2, 2, 3, 5], [4, 4, 4, 4, 4], [1, 2, 3, 4, 5], [5, 1, 0, 0, 0]])
    il, tl = torch.tensor([30, 25, 12, 3]), torch.tensor([5, 5, 5, 2])
    for reduction in ("none", "mean", "sum"):
        want, wg, got, gg = _both(lp, targets, il, tl, reduction=reduction)
        _close(got, want, 1e-5)
        _close(gg, wg, 1e-4)  # torch's own float32 rounding
        # and at least as close to the exact (float64) gradient as torch's
        _, exact, _, _ = _both(lp.double(), targets, il, tl, reduction=reduction)
        assert np.abs(gg - exact).max() <= max(np.abs(wg - exact).max(), 1e-6)


def test_gradient_is_torchs_through_log_softmax():
    """torch's gradient is exp(log_probs) minus the posterior; through log_softmax it is the
    exact gradient of the logits."""
    logits = torch.randn(5, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    targets, il, tl = torch.tensor([[1, 2], [3, 3]]), [5, 5], [2, 2]
    x = logits.clone().requires_grad_()
    TF.ctc_loss(x.log_softmax(2), targets, il, tl).backward()
    jx = jitgrad.tensor(logits.numpy(), requires_grad=True)
    F.ctc_loss(jx.log_softmax(2), _jg(targets), il, tl).backward()
    _close(jx.grad.numpy(), x.grad.numpy(), 1e-10)


def test_module_and_grad_fn():
    lp = _log_probs((6, 3, 5))
    shape, targets, il, tl = CASES["basic"]
    for kw in ({}, {"reduction": "sum", "blank": 0}, {"reduction": "none", "zero_infinity": True}):
        want = torch.nn.CTCLoss(**kw)(lp, torch.tensor(targets), il, tl)
        got = jitgrad.nn.CTCLoss(**kw)(jitgrad.tensor(lp.numpy()), jitgrad.tensor(targets), il, tl)
        _close(got.numpy(), want.numpy(), 1e-10)
    jx = jitgrad.tensor(lp.numpy(), requires_grad=True)
    names = {r: type(F.ctc_loss(jx, jitgrad.tensor(targets), il, tl, reduction=r).grad_fn).__name__
             for r in ("none", "mean", "sum")}
    assert names == {"none": "CtcLossBackward0", "mean": "MeanBackward0", "sum": "SumBackward0"}
    m = jitgrad.nn.CTCLoss(blank=2, zero_infinity=True)
    assert (m.blank, m.reduction, m.zero_infinity) == (2, "mean", True)


def _err(exc, match, lp=None, targets=None, il=(5, 5), tl=(2, 2), **kw):
    lp = jitgrad.zeros(5, 2, 4) if lp is None else lp
    targets = jitgrad.tensor([[1, 2], [3, 3]]) if targets is None else targets
    with pytest.raises(exc, match=match):
        F.ctc_loss(lp, targets, il, tl, **kw)


def test_errors_log_probs_and_options():
    _err(ShapeError, r"log_probs of shape \(T, N, C\)",
         lp=jitgrad.zeros(1, 5, 2, 4))
    _err(ShapeError, "1-dimensional", lp=jitgrad.zeros(5))
    _err(TypeError, "log_probs must be a floating-point tensor, got int64",
         lp=jitgrad.zeros(5, 2, 4, dtype=jitgrad.int64))
    _err(TypeError, "argument 'log_probs' must be Tensor", lp=np.zeros((5, 2, 4)))
    _err(TypeError, "argument 'targets' must be Tensor", targets=[[1, 2], [3, 3]])
    _err(RuntimeError, "must not be empty", lp=jitgrad.zeros(0, 2, 4), il=(0, 0))
    _err(RuntimeError, r"blank must be in label range \[0, 4\), got 4", blank=4)
    _err(ValueError, "avg is not a valid value for reduction", reduction="avg")


def test_errors_lengths():
    _err(RuntimeError, r"input_lengths to have value in \[0, 5\].*got value 6", il=(6, 5))
    _err(RuntimeError, r"input_lengths to have value in \[0, 5\].*got value -1", il=(-1, 5))
    _err(RuntimeError, "target_lengths to have value at least 0, but got value -1", tl=(-1, 2))
    _err(RuntimeError, r"input_lengths must be of size batch_size \(2\), got 3", il=(5, 5, 5))
    _err(RuntimeError, r"target_lengths must be of size batch_size \(2\), got 1", tl=[2])
    _err(TypeError, "input_lengths must be integral, got a float32 tensor",
         il=jitgrad.tensor([5.0, 5.0]))
    _err(TypeError, "target_lengths must be a Tensor or a sequence of ints",
         tl=[2.0, 2.0])
    _err(TypeError, "input_lengths must be a Tensor or a tuple/list of ints, got int",
         lp=jitgrad.zeros(5, 4), targets=jitgrad.tensor([1]), il=5, tl=[1])


def test_errors_targets():
    _err(ShapeError, r"size at least 3 \(the largest target_lengths\) at dimension 1, got "
                     r"size 2", tl=(3, 2))
    _err(ShapeError, "size 2 \\(the batch size\\) at dimension 0, got size 1",
         targets=jitgrad.tensor([[1, 2]]))
    _err(ShapeError, r"sum\(target_lengths\) = 4 elements, got 3",
         targets=jitgrad.tensor([1, 2, 3]))
    _err(ShapeError, "targets of 1 \\(concatenated\\) or 2",
         targets=jitgrad.ones(1, 2, 2, dtype=jitgrad.int64))
    _err(IndexError, r"targets value 7 is out of bounds: labels must lie in \[0, 4\)",
         targets=jitgrad.tensor([[1, 7], [3, 3]]))
    # padding past a target's length is not read
    F.ctc_loss(jitgrad.zeros(5, 2, 4), jitgrad.tensor([[1, 99], [3, 3]]), [5, 5], [1, 2])
