"""The norm-driven while loop from the autograd tutorials: the number of doublings depends on
the data. Eagerly, ``y.backward(v)`` gives the vector-Jacobian product; compiled, the same Python
runs under ``@jitgrad.grad``: the trace sees the loop's iterations, rolls them into one ``while``
and differentiates it in reverse, so one compile serves every trip count.

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


def compiled_vjp(v_values):
    v = torch.tensor(v_values)

    @torch.grad
    def vjp(x):
        return (doubling(x) * v).sum()

    return vjp


if __name__ == "__main__":
    torch.manual_seed(0)
    x0 = torch.randn(3).tolist()
    v = [0.1, 1.0, 0.0001]
    y, g = eager(x0, v)
    print("y:", y)
    # y = 2**k x, so the vector-Jacobian product is 2**k v.
    print("x.grad (eager):   ", g)
    vjp = compiled_vjp(v)
    print("x.grad (compiled):", vjp(torch.tensor(x0)))
    for scale in (1e-3, 1.0, 10.0, 1e-3, 1.0):
        vjp(torch.tensor(x0) * scale)
    info = vjp.cache_info()
    print(f"compiled calls: 6, with 10 to 20 doublings, traces: {info.traces}")
    print("loop:", *info.loops)
