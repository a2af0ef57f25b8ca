"""Test a checkpoint: ``python eval.py [ckpt_path=PATH|last]``. Model and data split come from it."""

from omegaconf import DictConfig

from litplate.runtime import app
from litplate.runtime.trusted_targets import user_configs


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint ``ckpt_path`` names; torch and Lightning load here, after composition."""
    app.check_keys(cfg, app.EVALUATION_KEYS)
    with user_configs():  # the checkpoint's own config builds inside checkpoint_configs()
        from litplate.runtime.heavy_imports import import_torch_and_lightning

        import_torch_and_lightning()
        from litplate.runtime import assembly, checkpointing
        from litplate.runtime.components import build_group
        from litplate.runtime.quiet import silence_noise

        silence_noise()
        app.run_dir(cfg)
        ckpt_path = checkpointing.checkpoint_for_evaluation(cfg.get("ckpt_path"), cfg.paths.log_dir)
        model, datamodule, label = assembly.rebuild(
            ckpt_path, use_ema=cfg.use_ema, trusted=cfg.get("trusted_targets") or ()
        )
        trainer = assembly.build_trainer(cfg.trainer, [], build_group(cfg.get("logger"), "logger"))
        assembly.check_batches(trainer, datamodule, splits=("test",))
        print(f"Test metrics below are for the {label.upper()} weights of {ckpt_path}.")
        trainer.test(model, datamodule=datamodule)
        return {k: float(v) for k, v in trainer.callback_metrics.items()}


@app.hydra_entry("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
