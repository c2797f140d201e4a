"""``import sardata`` makes ``fob.compute_similarity(..., backend="faiss")`` work, without importing fiftyone-brain.

fiftyone-brain looks backends up by name in ``fob.brain_config.similarity_backends`` (read from
``~/.fiftyone/brain_config.json`` and ``FIFTYONE_BRAIN_*`` variables when ``fiftyone.brain`` is first imported).
Importing fiftyone takes seconds, so ``import sardata`` must not import it just to add a row. Instead:

- if ``fiftyone.brain`` is already imported, the ``"faiss"`` row is added at once;
- otherwise a one-shot import hook waits for the first ``import fiftyone.brain`` in this process and adds the row
  right after that module has run (and before its importer sees it).

Either way, a user following FiftyOne's own docs after ``import sardata`` finds the backend. Environment variables
are not touched, so child processes and user-listed backends are left as they were (for the App server see
:func:`sardata.index.backend_env`). This module imports nothing from FiftyOne or the rest of sardata.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading

#: Name of the backend (``backend="faiss"``).
BACKEND_NAME = "faiss"
#: Its config class, imported by fiftyone-brain only when the backend is used.
CONFIG_CLS = "sardata.index.faiss.FaissSimilarityConfig"

_BRAIN = "fiftyone.brain"
_lock = threading.Lock()


def register_backend(default: bool = False, brain=None) -> None:
    """Adds ``"faiss"`` to ``fiftyone.brain.brain_config.similarity_backends`` of this process.

    Args:
        default (False): also make it the default backend of ``fob.compute_similarity``.
        brain (None): the ``fiftyone.brain`` module (imported when None).
    """
    if brain is None:
        import fiftyone.brain as brain
    brain.brain_config.similarity_backends.setdefault(BACKEND_NAME, {})["config_cls"] = CONFIG_CLS
    if default:
        brain.brain_config.default_similarity_backend = BACKEND_NAME


def register_when_brain_is_imported() -> None:
    """Registers now if ``fiftyone.brain`` is imported, else installs the one-shot import hook (idempotent)."""
    with _lock:
        brain = sys.modules.get(_BRAIN)
        if brain is not None and hasattr(brain, "brain_config"):
            register_backend(brain=brain)
        elif not any(isinstance(finder, _BrainFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _BrainFinder())


class _BrainFinder(importlib.abc.MetaPathFinder):
    """Finds ``fiftyone.brain`` with the other finders and wraps its loader; removes itself on first use."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _BRAIN:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader, then adds the backend to the freshly loaded ``fiftyone.brain``."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        register_backend(brain=module)

    def __getattr__(self, name):  # get_resource_reader, is_package, get_source, ...
        return getattr(self._loader, name)
