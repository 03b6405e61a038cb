"""A plug-in task ships its config like a built-in (`TaskPlugin.config`), and its variants run as
presets (`--preset=NAME_VARIANT`), though the preset list was fixed when amplify loaded."""
from __future__ import annotations

import dataclasses

import pytest

from amplify import configs, registry
from amplify.configs import base, cli


@dataclasses.dataclass(frozen=True)
class ShelfSettings:
  shelves: int = 3


def shelf_config(variant: str = ""):
  config = base.get_config()
  config.task = base.block("shelf", ShelfSettings({"": 3, "tall": 30}[variant]))
  config.rounds = {"": 2, "tall": 4}[variant]
  return config


registry.register_task("shelf", make=None, settings=ShelfSettings, config=shelf_config)


def test_a_plugin_variant_is_a_preset():
  tall = cli.config_from_flags(["amplify", "--preset=shelf_tall", "--task.shelves=31"])
  assert (tall.task.name, tall.task.shelves, tall.rounds) == ("shelf", 31, 4)
  assert configs.get_config("shelf").rounds == 2  # the task's own name: its default variant
  assert configs.get_config("lexicon_tiny").task.name == "lexicon"  # built-ins unchanged


def test_an_unknown_variant_names_the_way_out():
  with pytest.raises(ValueError, match="task 'shelf': its config has no variant 'wide'"):
    configs.get_config("shelf_wide")
  with pytest.raises(ValueError, match="unknown preset 'nonesuch'.*TASK_VARIANT"):
    configs.get_config("nonesuch")
