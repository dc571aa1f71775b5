"""Lifted control flow in one home: data-dependent Python loops and ``if``s, which the trace
unrolls, as the structured ``while`` and ``cond`` of the IR.

- ``primitives``: ``while``, ``cond``, ``tuple_get`` and ``while_vjp`` (the reverse sweep of a
  ``while``), with their NumPy semantics and the ``Tape`` a reverse sweep reads;
- ``rules``: their VJP, JVP and batching rules, in tables keyed by the primitive that the
  transforms take in (``transforms/autodiff.py``, ``forward.py``, ``batching.py``);
  ``second_reverse``: the reverse of a reverse loop (``grad`` of ``grad``), by forward mode
  through the loop and its reverse;
- ``lift``: a loop's header (a guard site that repeats) found in the trace, and its iterations
  rolled into one ``while``; ``branches``: iterations that took the two sides of an ``if``
  rewritten around a ``cond`` first; ``induction``: Python counters the header's bytecode proves,
  carried by the loop; ``signature``: what the iterations are compared by;
- ``merge``: two traces that went the two ways at an ``if`` merged into one ``cond``.

Which locals are live at a header (``trace/liveness.py``) and ``for`` over a range read from a
tensor (``trace/ranges.py``) are the tracer's: it records them while the function runs.

"Loop" here is a lifted ``while`` (``rules.LiftedLoop`` as a transform rewrites one); the loop
nests the backends run elementwise work in are ``transforms/fusion.py``'s ``LoopNest``.

Imports point one way: ``loops`` sits on the IR, the ops and the tracer, below ``transforms``.
"""
