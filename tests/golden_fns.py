"""Functions whose printed IR is pinned by test_golden.py. Keep line numbers stable: the IR
text carries them."""

import jitgrad as jg


def mlp_loss(x, w1, w2):
    h = jg.tanh(x @ w1)
    return ((h @ w2) ** 2).mean()


def softplus_sum(x):
    return jg.log(1 + jg.exp(x)).sum()


def branchy(x):
    if x.sum() > 0:
        y = x * 2
    else:
        y = -x
    return (y * y).sum()
