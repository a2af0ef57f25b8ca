"""A checkpoint from elsewhere must not be able to run code through the config stored in it.

Real checkpoints are edited as an attacker would: a ``_target_`` that writes a file, at the top of
a section, nested in the net, inside ``_args_``, as a partial, dressed up with a trusted prefix, as
a function of a trusted package, and as a non-string. The marker file the payload would write must
never appear, the error must be one line, and the honest checkpoint must still load.
"""

import copy

import pytest
import torch
from conftest import FAST, make_cfg, run_script

from litplate.eval import evaluate
from litplate.models import Classifier
from litplate.predict import predict
from litplate.runtime.errors import ConfigError
from litplate.train import train


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    out = tmp_path_factory.mktemp("honest")
    train(make_cfg(out, [*FAST, "trainer.max_epochs=1", "trainer.limit_train_batches=2", "test=false"]))
    return out / "checkpoints" / "last.ckpt"


def payloads(marker: str, source: str) -> dict[str, tuple[str, object]]:
    """case -> (where in the stored config, what to put there)."""
    copy_file = {"_target_": "shutil.copyfile", "_args_": [source, marker]}
    return {
        "top_of_data": ("data", copy_file),
        "nested_in_net": ("model.net", copy_file),
        "inside_args": ("model.net", {"_target_": "litplate.models.nets.MLP", "_args_": [copy_file]}),
        "partial": ("data", {**copy_file, "_partial_": True}),
        "trusted_prefix_bypass": (
            "model.net",
            {"_target_": "torch.nn.functional.torch.save", "_args_": [{"x": 1}, marker]},
        ),  # fmt: skip
        "function_of_a_trusted_package": (
            "data",
            {"_target_": "litplate.runtime.checkpointing.atomic_torch_save", "_args_": [{"x": 1}, marker]},
        ),
        "not_a_string": ("model.net", {"_target_": {"evil": True}}),
    }


def edited(honest, tmp_path, case: str):
    marker = tmp_path / "pwned"
    where, payload = payloads(str(marker), str(honest))[case]
    checkpoint = torch.load(honest, weights_only=True)
    node = checkpoint["config"]
    *parents, last = where.split(".")
    for key in parents:
        node = node[key]
    node[last] = copy.deepcopy(payload)
    path = tmp_path / f"{case}.ckpt"
    torch.save(checkpoint, path)
    return path, marker


@pytest.mark.parametrize("case", list(payloads("m", "s")))
def test_eval_and_predict_refuse_and_nothing_runs(honest, tmp_path, case):
    path, marker = edited(honest, tmp_path, case)
    for entry, name in ((evaluate, "eval"), (predict, "predict")):
        with pytest.raises(ConfigError) as error:
            entry(make_cfg(tmp_path / name, [f"ckpt_path={path}"], config_name=name))
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"ckpt_path: refused to build from {path}: "), message
        assert not marker.exists()
    assert not (tmp_path / "predict" / "predictions.csv").exists()


def test_the_command_line_says_it_in_one_line(honest, tmp_path):
    path, marker = edited(honest, tmp_path, "nested_in_net")
    done = run_script("eval.py", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: ckpt_path: refused to build from {path}: model.net._target_='shutil.copyfile' is outside "
        "the trusted packages (trusted: litplate.*, torch.nn.*, torch.optim.*, torchmetrics.*, "
        "lightning.pytorch.callbacks.*, lightning.pytorch.loggers.*; trusted_targets=[...] adds prefixes)"
    )
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_load_from_checkpoint_checks_the_stored_hyperparameters(honest, tmp_path):
    model = Classifier.load_from_checkpoint(honest)  # the honest one loads
    assert model.num_outputs == 10
    checkpoint = torch.load(honest, weights_only=True)
    marker = tmp_path / "pwned"
    checkpoint["hyper_parameters"]["net"] = {
        "_target_": "shutil.copyfile",
        "_args_": [str(honest), str(marker)],
    }
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match=r"net._target_='shutil.copyfile' is outside the trusted packages"):
        Classifier.load_from_checkpoint(path)
    assert not marker.exists()


def test_trusted_targets_adds_a_package(honest, tmp_path):
    checkpoint = torch.load(honest, weights_only=True)
    checkpoint["config"]["model"]["net"]["_target_"] = "torch.nn.Identity"  # trusted class, wrong net
    path = tmp_path / "identity.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match="does not build here"):  # got past the check, then failed to fit
        evaluate(make_cfg(tmp_path / "eval", [f"ckpt_path={path}"], config_name="eval"))
    checkpoint["config"]["model"]["net"]["_target_"] = "collections.OrderedDict"
    torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match="outside the trusted packages"):
        evaluate(make_cfg(tmp_path / "eval", [f"ckpt_path={path}"], config_name="eval"))
    with pytest.raises(ConfigError, match="does not build here"):  # now trusted, but not a net that fits
        evaluate(
            make_cfg(
                tmp_path / "eval", [f"ckpt_path={path}", "trusted_targets=[collections.]"], config_name="eval"
            )
        )


def test_hydra_whitelist_still_refuses_what_the_first_check_would_miss(tmp_path):
    """The second layer on its own: inside ``checkpoint_configs()`` Hydra refuses a target outside
    the trusted packages and one dressed up with a trusted prefix, even within ``user_configs()``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from litplate.runtime.trusted_targets import checkpoint_configs, user_configs

    marker = tmp_path / "written"
    for target in ("shutil.copyfile", "torch.nn.modules.module.torch.save"):
        node = {"_target_": target, "_args_": [str(__file__), str(marker)]}
        with user_configs(), checkpoint_configs(), pytest.raises(InstantiationException, match="whitelist"):
            instantiate(node)
    with user_configs(), checkpoint_configs():
        assert isinstance(instantiate({"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 1}),
                          torch.nn.Linear)  # fmt: skip
    assert not marker.exists()
