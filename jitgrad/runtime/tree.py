"""Growing the tree of traces: each trace reports the first guard that failed, with the value it
saw; the runtime follows the child for that outcome, or traces one anew from the current inputs,
and two traces that split at an ``if`` on data merge into one with a ``cond``. A new trace that
lifted the loop whose header failed takes its parent's place (it serves every trip count). Past
the re-trace limits the runtime gives up on tracing (``runtime/eager.py``)."""

from __future__ import annotations

import time

from jitgrad._settings import config, log as _log
from jitgrad.errors import GuardFailure
from jitgrad.loops.merge import merge as merge_branches
from jitgrad.runtime.nodes import Call, TraceNode, _name
from jitgrad.trace.tracer import Traced


class TreeMixin:
    """``follow`` and ``merge``, for the Runtime (which traces, compiles and counts)."""

    def follow(self, call: Call, node: TraceNode, args, kwargs):
        """Run ``node`` and, where a guard fails, the child for its outcome (traced anew when
        there is none) until a trace's guards all hold: ``(node, outputs)``; or, past the
        re-trace limits, the reason to give up (a string)."""
        base = [x._value for x in call.leaves]
        if call.implicit:
            base += [x._value for x in call.implicit]
        just_traced = False
        # where ``node`` hangs in the tree, ``table[at]``: the runtime's cache of roots by call
        # key, or a node's children by guard outcome (a merged or loop-lifting trace takes its
        # parent's place there)
        table, at = self.cache, call.key
        while True:
            inputs = base + [t._value for t in node.traced.refs] if node.traced.refs else base
            try:
                return node, node.exe(inputs)
            except GuardFailure as gf:
                if just_traced:
                    return ("the function took a different path when traced again on the same "
                            "inputs (is it deterministic?)")
                self.guard_failures += 1
                key = (gf.index, _outcome_key(gf.observed))
                child = node.children.get(key)
                if child is None:
                    site = node.traced.guard_sites[gf.index]
                    expect = _expected(node, gf.index)
                    reason = f"guard at {site} changed ({expect!r} -> {gf.observed!r})"
                    self.retraces.append(reason)
                    _log("retrace", f"{_name(self.fn)}: {reason}")
                    n = self.site_retraces.get(site, 0) + 1
                    self.site_retraces[site] = n
                    limit = self.retrace_limit if self.retrace_limit is not None \
                        else config.retrace_limit
                    if self.traces >= limit:
                        return (f"it was traced {self.traces} times (the limit); the last guard "
                                f"to change is at {site}")
                    if not isinstance(gf.observed, bool) and n >= config.unstable_guard_limit:
                        return f"the value read at {site} changes on nearly every call"
                    child = node.children[key] = self.new_trace(call, args, kwargs)
                    just_traced = True
                    merged = self.merge(node, child, gf, call)
                    if merged is not None:
                        # Both sides of an if on data are traced: one node, one kernel, takes
                        # this trace's place in the tree.
                        table[at] = merged
                        self.forget(node)
                        node = merged
                        continue
                    if _lifted_at(child, node.traced.guard_context[gf.index][0]
                                  if gf.index < len(node.traced.guard_context) else None) \
                            and _top_level_guard(node, gf.index):
                        # The new trace lifted the loop whose header failed here, unrolled: it
                        # serves every trip count, so it takes this trace's place in the tree.
                        # (Not a guard inside a loop this trace lifted, as a for's range
                        # header inside the loop its break made: each serves calls the other
                        # does not.)
                        del node.children[key]
                        table[at] = child
                        self.forget(node)
                        node = child
                        continue
                else:
                    just_traced = False
                table, at = node.children, key
                node = child

    def merge(self, node: TraceNode, child: TraceNode, gf, call: Call) -> TraceNode | None:
        """``node`` and its new ``child`` (traced when guard ``gf`` failed) as one trace with a
        ``cond`` on that guard, when ``node`` has no other children and they merge."""
        if not config.merge_branches or not isinstance(gf.observed, bool) or \
                len(node.children) != 1:
            return None
        pt, ct = node.traced, child.traced
        site = pt.guard_context[gf.index][0] if gf.index < len(pt.guard_context) else None
        if site and sum(1 for c in pt.guard_context if c[0] == site) > 1:
            return None  # a loop's header (one not lifted): an if's two sides merge, not trips
        if pt.out_tree != ct.out_tree or len(pt.refs) != len(ct.refs) or any(
                a is not b for a, b in zip(pt.refs, ct.refs)):
            return None
        t0 = time.perf_counter()
        g = merge_branches(pt.graph, ct.graph, gf.index, len(pt.guard_sites))
        if g is None:
            return None
        k = gf.index + 1
        traced = Traced(g, pt.out_tree, pt.refs, pt.guard_sites + ct.guard_sites[k:],
                        pt.guard_context + ct.guard_context[k:])
        traced.loops = pt.loops + ct.loops
        _log("retrace", f"{_name(self.fn)}: both sides of the guard at "
                        f"{pt.guard_sites[gf.index]} traced: merged into one cond")
        return self.stages(traced, call, t0)

def _outcome_key(v):
    return "nan" if v != v else v


def _top_level_guard(node: TraceNode, index: int) -> bool:
    """Whether guard ``index`` of ``node``'s trace is outside every lifted loop's body."""
    return any(e.out is None and e.prim.kind == "guard" and e.params["index"] == index
               for e in node.traced.graph.eqns)


def _lifted_at(node: TraceNode, site_key) -> bool:
    return site_key is not None and any(r.lifted and r.key == site_key for r in node.traced.loops)


def _expected(node: TraceNode, index: int):
    for e in node.traced.graph.walk():
        if e.out is None and e.prim.kind == "guard" and e.params["index"] == index:
            return e.params["expect"]
    return None


