"""The norm-driven while loop from the autograd tutorials: the number of doublings depends on
the data, and ``y.backward(v)`` gives a vector-Jacobian product.

Run: python examples/while_loop.py
"""

import jitgrad as torch


def doubling(x):
    y = x * 2
    while y.norm() < 1000:
        y = y * 2
    return y


def eager(x_values, v_values):
    x = torch.tensor(x_values, requires_grad=True)
    y = doubling(x)
    y.backward(torch.tensor(v_values))
    return y, x.grad


if __name__ == "__main__":
    torch.manual_seed(0)
    x0 = torch.randn(3).tolist()
    v = [0.1, 1.0, 0.0001]
    y, g = eager(x0, v)
    print("y:", y)
    # y = 2**k x, so the vector-Jacobian product is 2**k v.
    print("x.grad (eager):", g)
