"""``jitgrad.hub``: the part of ``torch.hub`` that fetches pretrained weights.
``load_state_dict_from_url`` downloads a checkpoint once into the hub cache (the directory
torch uses, so files torch already fetched are found) and reads it with ``jitgrad.load``,
which reads files written by ``torch.save``. ``load`` and ``list``, which run a repository's
``hubconf.py`` (code written against torch), are not supported.

>>> import jitgrad as torch
>>> torch.hub.get_dir().endswith("hub")
True
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from urllib.parse import urlparse

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_hub_dir: str | None = None


def get_dir() -> str:
    """The hub cache: ``set_dir``'s choice, else ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub`` (``~/.cache/torch/hub``), as torch."""
    if _hub_dir is not None:
        return _hub_dir
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")),
        "torch")
    return os.path.join(os.path.expanduser(home), "hub")


def set_dir(d) -> None:
    """Use ``d`` as the hub cache.

    >>> import jitgrad
    >>> jitgrad.hub.set_dir("/tmp/hub"); jitgrad.hub.get_dir()
    '/tmp/hub'
    >>> jitgrad.hub.set_dir(None)
    """
    global _hub_dir
    _hub_dir = None if d is None else os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst, hash_prefix: str | None = None,
                         progress: bool = True) -> None:
    """Download ``url`` to ``dst`` (written whole or not at all), checking that the SHA-256
    of the content starts with ``hash_prefix`` when one is given."""
    from urllib.request import Request, urlopen
    dst = os.path.expanduser(os.fspath(dst))
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    sha = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urlopen(Request(url, headers={
                "User-Agent": "jitgrad.hub"})) as resp:
            while chunk := resp.read(1 << 16):
                sha.update(chunk)
                out.write(chunk)
        if hash_prefix is not None and not sha.hexdigest().startswith(hash_prefix):
            raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got '
                               f'"{sha.hexdigest()}") for the download of {url}')
        shutil.move(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_state_dict_from_url(url: str, model_dir=None, map_location=None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             weights_only: bool = True):
    """The object saved at ``url`` (usually a state dict), downloaded into
    ``model_dir`` (default ``get_dir()/checkpoints``) unless already there, then read with
    ``jitgrad.load``. With ``check_hash``, the file name's ``-<hex>.`` part must prefix the
    content's SHA-256, as torch's convention."""
    from jitgrad.serialization import load
    model_dir = os.fspath(model_dir) if model_dir is not None \
        else os.path.join(get_dir(), "checkpoints")
    filename = file_name or os.path.basename(urlparse(url).path)
    if not filename:
        raise ValueError(f"load_state_dict_from_url: no file name in {url!r}; pass file_name=")
    cached = os.path.join(model_dir, filename)
    if not os.path.exists(cached):
        match = HASH_REGEX.search(filename) if check_hash else None
        download_url_to_file(url, cached, match.group(1) if match else None, progress)
    return load(cached, map_location=map_location, weights_only=weights_only)


def _needs_hubconf(what: str):
    raise NotImplementedError(
        f"jitgrad.hub.{what}: running a repository's hubconf.py is not supported (it builds "
        "models with torch's own classes); build the model in jitgrad and load its weights with "
        "jitgrad.hub.load_state_dict_from_url(url)")


def load(repo_or_dir, model, *args, **kwargs):
    """As ``torch.hub.load``: unsupported (see the module docstring)."""
    _needs_hubconf("load")


def list(github, force_reload: bool = False, **kwargs):  # noqa: A001  (torch's name)
    """As ``torch.hub.list``: unsupported (see the module docstring)."""
    _needs_hubconf("list")


def help(github, model, force_reload: bool = False, **kwargs):  # noqa: A001
    """As ``torch.hub.help``: unsupported (see the module docstring)."""
    _needs_hubconf("help")
