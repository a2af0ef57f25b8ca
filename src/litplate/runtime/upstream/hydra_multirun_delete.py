"""Workaround: Hydra 1.4.0rc3 turns ``~key`` into ``~key=null`` in every job of a multirun.

Hydra's sweepers rebuild each job's command line from the parsed overrides, and for a deletion
without a value ``get_value_element_as_str()`` now gives ``null``. ``~key=null`` means "delete
``key`` if its value is null", so ``python train.py -m seed=1,2 ~callbacks.ema`` fails in every job
with "Could not delete from config. The value of 'callbacks.ema' is {...} and not None" (it ran
under Hydra 1.3; the same symptom with the Optuna sweeper is hydra issue 1811).

For the entries of the ``callbacks`` and ``logger`` dicts, which ``components.build_group`` skips
when null, ``callbacks.ema=null`` switches the entry off exactly as deleting it does; in a multirun
``entries_off_as_null`` rewrites them so. Deleting other keys in a multirun still fails (the job's
error names the key). ``tests/test_upstream.py`` checks that the sweeper still has the bug: when
it fails, delete this module and its one use in ``app.hydra_entry``.
"""

from collections.abc import Sequence

_MULTIRUN_FLAGS = ("-m", "--multirun")
_DICT_GROUPS = ("callbacks.", "logger.")


def is_multirun(argv: Sequence[str]) -> bool:
    """A multirun from the command line: ``-m``, or a search config that sets ``hydra.mode``."""
    return any(
        a in _MULTIRUN_FLAGS or "hparams_search=" in a or a.startswith("hydra.mode=MULTI") for a in argv
    )


def entries_off_as_null(argv: Sequence[str]) -> list[str]:
    """``~callbacks.NAME`` / ``~logger.NAME`` as ``callbacks.NAME=null`` in a multirun; else unchanged."""
    if not is_multirun(argv):
        return list(argv)
    return [
        f"{a[1:]}=null" if a.startswith("~") and a[1:].startswith(_DICT_GROUPS) and "=" not in a else a
        for a in argv
    ]
