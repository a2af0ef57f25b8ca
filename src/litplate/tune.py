"""Hyperparameter search that prunes hopeless trials: ``python tune.py [+experiment=NAME] [key=value ...]``.

Hydra's Optuna sweeper launches each trial as a job that never sees the Optuna trial, so nothing can
report an epoch's score to it and nothing is ever pruned (hydra issue 1954). Here Optuna drives:
each trial composes the train config with Hydra's compose API, trains with a Lightning callback that
reports every epoch's ``best.metric`` to the trial, and stops when the pruner says so.

The search space and study settings are the ones ``+hparams_search=optuna`` gives Hydra's sweeper
(``hydra.sweeper.params``, ``n_trials``, ``sampler``, ``storage``...), so one config serves both
ways; ``pruner=median|successive_halving|none`` chooses the pruner (``conf/pruner/``). Trials run
one after another in this process, each in ``<run dir>/<trial number>``. Needs the ``hpo`` extra.
"""

from pathlib import Path
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import DictConfig, OmegaConf

from litplate.runtime import app
from litplate.runtime.errors import ConfigError
from litplate.runtime.trusted_targets import user_configs


def search_space(params: dict[str, str] | None) -> dict[str, Any]:
    """``hydra.sweeper.params`` parsed with Hydra's own override grammar: key -> sweep or fixed value."""
    parser = OverridesParser.create()
    return {key: parser.parse_overrides([f"{key}={text}"])[0].value() for key, text in (params or {}).items()}


def suggest(trial: Any, key: str, sweep: Any) -> Any:
    """One value for ``key`` from the trial, as Hydra's Optuna sweeper would draw it."""
    if isinstance(sweep, ChoiceSweep):
        return trial.suggest_categorical(key, list(sweep.list))
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return trial.suggest_int(key, sweep.start, sweep.end, log=log)
        return trial.suggest_float(key, sweep.start, sweep.end, log=log)
    if isinstance(sweep, RangeSweep):  # Python's range: the stop value is excluded
        values = []
        value = sweep.start
        while value < sweep.stop:
            values.append(value)
            value += sweep.step
        return trial.suggest_categorical(key, values)
    return sweep  # a fixed value


def as_override(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if isinstance(value, str):
        return f"{key}='{value}'"
    return f"{key}={value}"


def tune(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """Run the study; returns what is written to ``optimization_results.yaml``."""
    try:
        import optuna
        from optuna_integration import PyTorchLightningPruningCallback
    except ImportError as error:
        message = f"tune.py needs the hpo extra ({error.name} is missing): pip install -e '.[hpo]'"
        raise ConfigError(message, "tune") from None
    from litplate.runtime.components import build
    from litplate.runtime.distributed import separate_process_group
    from litplate.train import train

    sweeper = HydraConfig.get().sweeper
    space = search_space(OmegaConf.to_container(sweeper.params))
    study_dir = app.run_dir(cfg)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with user_configs():
        study = optuna.create_study(
            study_name=sweeper.study_name,
            storage=sweeper.storage,
            direction=str(sweeper.direction).rsplit(".", 1)[-1],
            sampler=build(sweeper.sampler, "hydra.sweeper.sampler"),
            pruner=build(cfg.pruner, "pruner"),
            load_if_exists=True,
        )

    def objective(trial: Any) -> float:
        chosen = [as_override(key, suggest(trial, key, sweep)) for key, sweep in space.items()]
        trial_dir = study_dir / str(trial.number)
        trial_cfg = compose("tune", [*overrides, *chosen, f"paths.output_dir={trial_dir}"])
        pruning = PyTorchLightningPruningCallback(trial, monitor=trial_cfg.best.metric)
        with separate_process_group():
            metrics = train(trial_cfg, callbacks=[pruning])
        if trial_cfg.optimized_metric not in metrics:
            logged = ", ".join(sorted(metrics))
            message = f"={trial_cfg.optimized_metric!r} was not logged; logged: {logged}"
            raise ConfigError(message, "optimized_metric")
        return metrics[trial_cfg.optimized_metric]

    study.optimize(objective, n_trials=sweeper.n_trials)
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs": len(t.intermediate_values),
            "params": t.params,
        }
        for t in study.trials
    ]
    results = {
        "name": study.study_name,
        "best_params": study.best_params,
        "best_value": study.best_value,
        "epochs_trained": sum(t["epochs"] for t in trials),
        "pruned": sum(t["state"] == "PRUNED" for t in trials),
        "trials": trials,
    }
    (study_dir / "optimization_results.yaml").write_text(OmegaConf.to_yaml(results))
    print(
        f"Best {cfg.optimized_metric} = {study.best_value:.4f} with {study.best_params}; "
        f"{results['pruned']} of {len(trials)} trials pruned, {results['epochs_trained']} epochs "
        f"trained. Results: {Path(study_dir) / 'optimization_results.yaml'}"
    )
    return results


@app.hydra_entry("tune")
def main(cfg: DictConfig) -> None:
    tune(cfg, list(HydraConfig.get().overrides.task))


if __name__ == "__main__":
    main()
