"""``torch.signal``: signal processing. Its one namespace, as torch's, is ``windows``: the
window functions (``hann``, ``hamming``, ``blackman``, ``kaiser``, ``gaussian``...).

>>> import jitgrad as torch
>>> torch.signal.windows.bartlett(3)
tensor([0., 1., 0.])
"""

from jitgrad.signal import windows

__all__ = ["windows"]
