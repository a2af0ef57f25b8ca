"""Classifier's arguments: TaskModule's (``runtime/module_args.py``), checked before torch loads."""

from litplate.runtime import module_args
from litplate.runtime.arguments import Arguments

Classifier = Arguments(module_args.TaskModule)
