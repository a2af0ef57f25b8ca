"""A component's argument checks, declared where no torch is imported, so a config is checked before it loads.

Each component keeps its checks in a light module next to its own, named after it with ``_args``
(``models/nets/mlp.py`` -> ``models/nets/mlp_args.py``), as an ``Arguments`` under the class's
name (``MLP = Arguments(hidden=checks.sizes, dropout=checks.fraction)``). The class runs them on
the values it is given (``@mlp_args.MLP.check`` on ``__init__``), and ``train()`` runs the very
same ones on the composed config before torch and Lightning are imported (``check_config``): a
bad value is one line in well under a second instead of after ``import lightning``. A component
without such a module is checked when it is built, as before, only later.
"""

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from litplate.runtime.errors import ArgumentError, ConfigError

PACKAGE = __name__.split(".")[0]  # only this project's components are looked up (importing others is slow)
HYDRA_KEYS = {"_target_", "_recursive_", "_convert_", "_partial_", "_args_"}

Rule = Callable[[str, Any], Any]  # (argument name, value) -> the value to use; raises ArgumentError
Together = Callable[[dict[str, Any]], None]  # checks arguments that depend on each other; may replace them
P = ParamSpec("P")


class Arguments:
    """The checks of one class's constructor arguments: one rule per argument, and checks of several.

    ``bases`` are the base classes' ``Arguments``: their rules apply too, as the base constructors
    run too. Only the arguments a caller gives are checked (a config may leave some to the class's
    defaults); a ``together`` check skips itself when an argument it needs is not given.
    """

    def __init__(self, *bases: "Arguments", together: Together | None = None, **rules: Rule) -> None:
        self.rules: dict[str, Rule] = {}
        self.together: list[Together] = []
        for base in bases:
            self.rules |= base.rules
            self.together += base.together
        self.rules |= rules
        if together is not None:
            self.together.append(together)

    def checked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with every argument that has a rule checked, and replaced by what the rule returns."""
        result = dict(values)
        for name, rule in self.rules.items():
            if name in result:
                result[name] = rule(name, result[name])
        for together in self.together:
            together(result)
        return result

    def check(self, init: Callable[P, None]) -> Callable[P, None]:
        """Decorate ``__init__``: it receives its arguments (defaults included) checked.

        Only its own named parameters: what it passes on in ``**kwargs`` is checked by the base
        class's ``__init__``. (Not for a ``LightningModule`` whose subclasses call ``super().__init__``:
        ``save_hyperparameters`` reads their arguments from the frames around it; call ``checked`` there.)
        """
        signature = inspect.signature(init)
        named = {
            name
            for name, parameter in signature.parameters.items()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        }

        @functools.wraps(init)
        def checked_init(*args: P.args, **kwargs: P.kwargs) -> None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            own = {k: v for k, v in bound.arguments.items() if k in named}
            bound.arguments.update(self.checked(own))
            init(*bound.args, **bound.kwargs)

        return checked_init

    def nested(self, name: str, value: Any) -> dict[str, Any] | None:
        """A rule for an argument that is itself a mapping of arguments (``regularization: {l1, l2}``);
        its errors name both (``regularization.l1``). None stays None."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ArgumentError.of(name, value, "a mapping of " + ", ".join(self.rules))
        try:
            return self.checked(value)
        except ConfigError as error:
            raise error.under(name) from None


def arguments_of(target: Any) -> Arguments | None:
    """The ``Arguments`` declared for ``target`` (``pkg.mod.Class``: ``Class`` in ``pkg.mod_args``),
    or None: not this project's class, or no light module declares its arguments."""
    if not isinstance(target, str) or not target.startswith(f"{PACKAGE}."):
        return None
    module_name, _, class_name = target.rpartition(".")
    light = f"{module_name}_args"
    try:
        module = importlib.import_module(light)
    except ModuleNotFoundError as error:
        if error.name is not None and (light == error.name or light.startswith(f"{error.name}.")):
            return None  # no such module (or package): the class is checked when it is built
        raise
    found = getattr(module, class_name, None)
    return found if isinstance(found, Arguments) else None


def check_config(cfg: DictConfig) -> None:
    """Every component in ``cfg`` (at any depth, Hydra's own node aside) that has ``Arguments``,
    checked as its constructor would; an error names the config key (``model.net.dropout``)."""
    for key, node in cfg.items():
        if key != "hydra":
            _check_node(node, str(key))


def _check_node(node: Any, path: str) -> None:
    if isinstance(node, ListConfig):
        for i, item in enumerate(node):
            _check_node(item, f"{path}[{i}]")
        return
    if not isinstance(node, DictConfig):
        return
    arguments = arguments_of(node.get("_target_"))
    if arguments is not None:
        check_node(node, arguments, path)
    for key, child in node.items_ex(resolve=False):
        _check_node(child, f"{path}.{key}")


def check_node(node: DictConfig, arguments: Arguments, path: str) -> None:
    """The arguments ``node`` gives, checked by ``arguments``; an error names ``path`` (``trainer``)."""
    try:
        arguments.checked(_given(node))
    except ConfigError as error:
        raise error.under(path) from None


def _given(node: DictConfig) -> dict[str, Any]:
    """The arguments ``node`` gives, resolved to plain Python. One whose interpolation does not
    resolve yet (a run directory outside a Hydra run) is left to the build."""
    given = {}
    for name in node:
        if name in HYDRA_KEYS:
            continue
        try:
            value = node[name]
            given[name] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        except OmegaConfBaseException:
            continue
    return given
