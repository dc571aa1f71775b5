"""Optimizers with torch's names and update rules: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``,
``Adagrad`` and ``LBFGS``.

``step()`` reads each parameter's ``.grad``; ``step(grads)`` takes the gradients that a compiled
``jitgrad.grad`` returns (a dict keyed like ``named_parameters()`` for a Module, or a sequence in
parameter order).

>>> import jitgrad
>>> w = jitgrad.nn.Parameter(jitgrad.tensor([1.0, 2.0]))
>>> opt = jitgrad.optim.SGD([w], lr=0.1)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w
Parameter containing:
tensor([0.8000, 1.6000], requires_grad=True)
"""

from jitgrad.optim.optimizer import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop  # noqa: F401
from jitgrad.optim.lbfgs import LBFGS  # noqa: F401
