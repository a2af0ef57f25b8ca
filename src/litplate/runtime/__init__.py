"""The machinery a project keeps: base module, callbacks, checkpointing, errors, Hydra entry points."""
