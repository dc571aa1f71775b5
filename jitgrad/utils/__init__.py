"""Utilities as in ``torch.utils``: ``data`` (datasets and loaders), ``benchmark`` (timing)
and ``checkpoint``."""

from jitgrad.utils import benchmark, checkpoint, data  # noqa: F401
