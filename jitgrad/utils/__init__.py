"""Utilities as in ``torch.utils``: ``data`` (datasets and loaders)."""

from jitgrad.utils import data  # noqa: F401
