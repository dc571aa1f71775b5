"""The classic autograd tutorial programs, run with ``import jitgrad as torch``.

Run: python examples/autograd_basics.py
"""

import jitgrad as torch


def scalar_example():
    # z = x*y + y**2 at (2, 3): dz/dx = y = 3, dz/dy = x + 2y = 8.
    x = torch.tensor(2.0, requires_grad=True)
    y = torch.tensor(3.0, requires_grad=True)
    z = x * y + y ** 2
    z.backward()
    print(f"z: {z.item()}")
    print(f"dz/dx: {x.grad.item()}")
    print(f"dz/dy: {y.grad.item()}")
    return z, x.grad, y.grad


def graph_example():
    x = torch.tensor(1.0, requires_grad=True)
    y = torch.tensor(2.0, requires_grad=True)
    a = x + y
    b = x * y
    c = a * b
    print("a.grad_fn:", a.grad_fn)
    print("b.grad_fn:", b.grad_fn)
    print("c.grad_fn:", c.grad_fn)
    print("c.grad_fn.next_functions:", [type(f).__name__ for f, _ in c.grad_fn.next_functions])
    c.backward()
    # c = (x + y) x y: dc/dx = xy + (x + y) y = 2 + 6 = 8, dc/dy = xy + (x + y) x = 2 + 3 = 5
    print(f"dc/dx: {x.grad.item()}")
    print(f"dc/dy: {y.grad.item()}")
    return c, x.grad, y.grad


def no_grad_example():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        y = x * 2
    print("y.requires_grad under no_grad:", y.requires_grad)
    d = x.detach()
    print("x.detach().requires_grad:", d.requires_grad)
    return y, d


def polynomial_example():
    x = torch.tensor(3.0, requires_grad=True)
    y = x ** 2 + 2 * x + 1  # (x + 1)^2 = 16
    loss = y ** 2  # (x + 1)^4 = 256; d/dx = 4 (x + 1)^3 = 256
    loss.backward()
    print(f"y: {y.item()}, loss: {loss.item()}, dloss/dx: {x.grad.item()}")
    return y, loss, x.grad


if __name__ == "__main__":
    scalar_example()
    graph_example()
    no_grad_example()
    polynomial_example()
