"""jitgrad's version, in a module of its own so that the package and its caches can share it."""

__version__ = "0.1.0"
