"""The runtime behind compiled functions: a cache from argument signature to a *trace tree*
(``core.Runtime``), the nodes it holds (``nodes``), how results are built (``results``) and the
eager fallback (``eager``).

>>> import jitgrad
>>> f = jitgrad.jit(lambda x: x * 2)
>>> _ = f(jitgrad.ones(2))
>>> f.cache_info().traces
1
"""

from jitgrad._settings import config  # noqa: F401
from jitgrad.errors import GuardFailure  # noqa: F401
from jitgrad.runtime.core import Runtime  # noqa: F401
from jitgrad.runtime.nodes import _MISS, CacheInfo, Call, RetraceWarning, TraceNode  # noqa: F401
