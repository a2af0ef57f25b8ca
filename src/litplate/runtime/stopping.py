"""Where fit stops: at an epoch's end, or inside one (``max_steps``, ``max_time``, a mid-epoch stop).

Lightning runs the epoch-end hooks when fit stops inside an epoch, as if the epoch were over. The
module must not then step the plateau scheduler on a partial mean, and ``last.ckpt`` must record a
position inside the epoch, or a run continued with a larger limit skips the epoch's remaining batches.
"""

import lightning as L


def inside_epoch(trainer: L.Trainer) -> bool:
    """Whether the training batches run so far leave the current epoch unfinished."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return not (progress.is_last_batch or progress.current.ready >= trainer.num_training_batches)


def stops_inside_epoch(trainer: L.Trainer) -> bool:
    """At a batch's end: fit ends after this batch (its loop is done), and the epoch is not over.

    Called every step: two attribute reads decide for all steps but the last few.
    """
    limit = trainer.max_steps
    if not (trainer.should_stop or (limit != -1 and trainer.global_step >= limit)):
        return False
    return trainer.fit_loop.epoch_loop.done and inside_epoch(trainer)
