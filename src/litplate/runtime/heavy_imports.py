"""torch and Lightning, imported once the config has been checked, without the garbage collector.

The two imports create about 660,000 objects that live as long as the process (modules, functions,
classes, type annotations). With the collector on, it walks them again and again while they are
created: measured on a 2-core machine, ``import lightning`` takes 4.6-5.2 s with it and 3.5-4.0 s
without. And the first full collection after the import walks them once more, ~0.3 s, landing
somewhere in the run's first second (measured: inside the config-tree print).

So the import runs with the collector off, and ``gc.freeze()`` then moves everything alive to a
generation the collector never walks, as CPython's docs advise for long-lived startup state (it
also keeps a forked DataLoader worker's collections from writing to those objects' pages).
The price: the reference cycles the import itself left as garbage are never reclaimed, about
12,000 objects, 8 MB, once per process.
"""

import gc
import sys


def import_torch_and_lightning() -> None:
    """Import both; when this call is what loads torch, do it as the module docstring says.

    Only then: in a notebook or test session that had torch already, nothing changes, and the
    user's objects stay collectable (``gc.unfreeze()`` would undo a freeze).
    """
    if "torch" in sys.modules:
        import lightning  # noqa: F401
        import torch  # noqa: F401

        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import lightning  # noqa: F401
        import torch  # noqa: F401
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
