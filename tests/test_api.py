"""The public API: one list of names, each importable from `parables`, typed the same way for
type checkers, and nothing private or kept only for an old name."""

from __future__ import annotations

import ast
import importlib
import inspect

import parables


def test_every_public_name_resolves_from_its_module() -> None:
    names = [n for n in parables.__all__ if n != "__version__"]
    assert names == sorted(names) == sorted(parables._EXPORTS)
    for name in names:
        assert not name.startswith("_")
        value = getattr(parables, name)
        module = importlib.import_module(parables._EXPORTS[name])
        assert getattr(module, name) is value, name
    for legacy in ("StoriesResult", "generate_stories", "ArmData", "prepare_arms", "train_arm"):
        assert legacy not in parables.__all__


def test_the_type_checking_imports_match_the_exports() -> None:
    tree = ast.parse(inspect.getsource(parables))
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and ast.unparse(n.test) == "TYPE_CHECKING")
    imported = {a.asname or a.name: node.module for node in block.body
                if isinstance(node, ast.ImportFrom) for a in node.names}
    assert imported == parables._EXPORTS
