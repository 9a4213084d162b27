"""Every srblock module loaded at the start of a long job, so that the job runs the code it started with.

srblock imports much of itself where it is used (a sweep's report imports the statistics, trends and plots after
its first finished run; training imports the corruption benchmark at its end), so a module is often first imported
hours into a job. Were an editable install (``pip install -e .``) edited or pulled meanwhile, that module would come
from the new source and run beside the old ones already loaded: two versions mixed, which fails or, worse, computes
what neither would. Written by hand: ``pkgutil`` lists the modules, nothing imports them all in one call.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import pkgutil

__all__ = ["import_every_module"]


@functools.cache
def import_every_module() -> None:
    """Import every module of the srblock package now (once per process, about 2 s). A module that needs a missing
    optional extra is left out: the feature that uses it names the extra when called."""
    import srblock

    for module in pkgutil.walk_packages(srblock.__path__, f"{srblock.__name__}."):
        if not module.name.endswith(".__main__"):  # the command line itself, which would run
            with contextlib.suppress(ImportError):
                importlib.import_module(module.name)
