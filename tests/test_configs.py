"""amplify.configs: the config files, the Python API (get_config), plug-in configs, config.json's
version, and the command line (amplify.configs.cli)."""
import dataclasses
import re
import sys
import types

import ml_collections
import pytest
from absl import flags

import helpers
from amplify import configs, registry
from amplify.configs import base, cli, load
from amplify.oracles.scripted import NoisySettings
from amplify.tasks.lexicon import LexiconSettings
from amplify.tasks.permutation import PermutationSettings


def _at(config, path):
  for part in path.split("."):
    config = config[part]
  return config


# -- the config files ------------------------------------------------------------------------

def test_every_field_is_a_flat_name_or_a_plugin_setting():
  """Every field the flat config had keeps its flat name; later fields have only their path."""
  config = configs.get_config()
  paths = {p for p, _ in helpers.config_leaves(config) if not p.startswith(("task.", "oracle."))}
  later = {"curriculum.on", "curriculum.start", "curriculum.threshold", "train.replay_rounds",
           "train.shard_params", "train.focus"}
  assert paths == set(configs.FLAT.values()) - {"task.name", "oracle.name"} | later


# What a task's preset may set: its own settings, its size and its budgets (rounds, labels, H's
# per-question budget, steps, the baselines' rows, the prior's steps, the evaluation's questions).
# Every other field is the engine's, the same for every task (issue 23's "one set of defaults";
# experiments/results/engine_defaults/): a task's default preset that sets one fails below.
BUDGETS = {"rounds", "eval_size", "label.size", "label.max_asks", "label.max_lookups",
           "train.total_steps", "train.baseline_size", "prior.steps"}


@pytest.mark.parametrize("task", registry.names(registry.TASK_GROUP))
def test_every_task_learns_with_the_engines_defaults(task):
  """A task's default preset (the CPU one) differs from the engine's defaults only in its own
  settings, size and budgets: the same network, optimiser, competence, replay, curriculum and
  type-2 settings for every task."""
  differs = helpers.engine_fields_set(configs.get_config(task))
  assert differs <= BUDGETS, sorted(differs - BUDGETS)


def test_presets_keep_their_numbers():
  tiny = configs.get_config("lexicon_tiny")
  assert configs.settings(tiny.task) == LexiconSettings(num_entities=32, max_set_size=4,
                                                        observations=12)
  assert (tiny.rounds, tiny.label.size, tiny.train.total_steps, tiny.model.width) == (
      3, 2048, 600, 32)
  assert configs.get_config("lexicon_large").task.num_entities == 10**6
  paper = configs.get_config("permutation_paper")
  assert configs.settings(paper.task) == PermutationSettings(64, 6, 4)
  assert (paper.rounds, paper.model.depth, paper.model.pointer_init, paper.train.idk_share) == (
      8, 6, True, 0.1)
  digits = configs.get_config("colored_digits_tiny")
  assert (digits.task.to_dict(), digits.model.width, digits.train.total_steps) == (
      {"name": "colored_digits"}, 16, 60)
  default = configs.get_config()
  assert (default.task.name, default.oracle.name, default.arm, default.train.batch_size) == (
      "lexicon", "scripted", "ltp", 256)


@pytest.mark.parametrize("task,variants", [("lexicon", ["", "tiny", "large", "huge"]),
                                           ("permutation", ["", "tiny", "paper"]),
                                           ("colored_digits", ["", "tiny"]),
                                           *[(task, ["", "tiny", "paper"]) for task in
                                             configs.BENCHMARK_2018[1:]]])
def test_variants_are_the_presets(task, variants):
  for variant in variants:
    preset = task + (f"_{variant}" if variant else "")
    assert configs.PRESETS[preset] == (task, variant)
    assert load.task_config(task, variant).to_dict() == configs.get_config(preset).to_dict()
  with pytest.raises(ValueError, match=r"no variant 'vast'; choose one of \["):
    load.task_config(task, "vast")


# -- overrides -------------------------------------------------------------------------------

def test_overrides_by_path_leaf_and_flat_name():
  config = configs.get_config("lexicon_tiny", rounds=1, total_steps=20, label_size=128,
                              **{"oracle.noise_rate": 0.5}, oracle="noisy", arm="raw_d",
                              num_entities=64)
  assert (config.rounds, config.train.total_steps, config.label.size, config.arm) == (
      1, 20, 128, "raw_d")
  assert configs.settings(config.oracle) == NoisySettings(0.5)
  assert configs.settings(config.task) == LexiconSettings(num_entities=64, max_set_size=4,
                                                          observations=12)
  same = configs.get_config("lexicon_tiny", **{"train.learning_rate": 0.01, "task.observations": 3,
                                               "learning_rate": 0.02, "gate": False})
  assert (same.train.learning_rate, same.task.observations, same.type2.gate) == (0.02, 3, False)
  assert same.prior.learning_rate == 0.3  # the flat learning_rate is train's, as it was


def test_task_and_oracle_switch_their_settings():
  assert configs.get_config(task="permutation").to_dict() == configs.get_config(
      "permutation").to_dict()
  mixed = configs.get_config("lexicon_tiny", task="permutation", oracle="noisy")
  assert (mixed.rounds, mixed.task.to_dict()) == (3, {"name": "permutation", "num_elements": 8,
                                                      "k_bits": 4, "prosaic_max_k": 4,
                                                      "form": "amplify"})
  assert mixed.oracle.to_dict() == {"name": "noisy", "noise_rate": 0.1}
  # the prior's settings are the task's (lexicon_tiny's 100 steps would be refused: latent only)
  assert configs.get_config("lexicon_tiny").prior.steps != mixed.prior.steps
  assert mixed.prior.to_dict() == configs.get_config("permutation").prior.to_dict()


@pytest.mark.parametrize("overrides,message", [
    ({"bogus": 1}, r"'bogus': no such setting .* train\.\{augment, "),
    ({"size": 3}, r"'size' is the name of \['label.size', 'type2.size'\]: write the path"),
    ({"train.bogus": 1}, r"'train.bogus': no such setting"),
    ({"noise_rate": 0.1}, r"'noise_rate': no such setting \(task 'lexicon', oracle 'scripted'\)"),
    ({"seed": "a"}, r"--seed='a': the field's type is int, not str"),
    ({"total_steps": 2}, r"--config.train.total_steps=2 < --rounds=5"),
    ({"width": 30}, r"--config.model.width=30 is not divisible by --config.model.heads=4"),
    ({"heldout_fraction": 0.0}, r"--config.label.heldout_fraction=0.0: the share of each "),
    ({"heldout_fraction": 1e-5}, r"--config.label.heldout_fraction=1e-05 of "
                                 r"--config.label.size=16384 leaves 0 held-out rows"),
    ({"policy": "x"}, r"--config.model.policy='x': choose one of"),
    ({"curriculum.start": 1}, r"--config.curriculum.start=1: an instance needs at least 2"),
    ({"curriculum.threshold": 1.5}, r"--config.curriculum.threshold=1.5: a rate or a share"),
    ({"num_entities": 0}, r"--task.num_entities=0: must be a positive integer"),
    ({"task": "nope"}, r"unknown task 'nope' \(--task\); choose one of"),
    ({"oracle": "nope"}, r"unknown oracle 'nope' \(--oracle\); choose one of"),
])
def test_bad_overrides_name_what_exists(overrides, message):
  with pytest.raises(ValueError, match=message):
    configs.get_config(**overrides)


def test_unknown_preset():
  with pytest.raises(ValueError, match=r"unknown preset 'x' \(--preset\); choose one of"):
    configs.get_config("x")


def test_config_is_locked():
  config = configs.get_config("lexicon_tiny")
  with pytest.raises(AttributeError):
    config.new_field = 1
  with pytest.raises(AttributeError):
    config.train.new_field = 1
  config.seed = 3  # values still change (tests do); fields do not appear


# -- plug-ins --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ToySettings:
  size: int = 7
  scale: float = 1.0


def _toy_config(variant=""):
  config = base.get_config()
  config.task = base.block("toy", ToySettings(size={"": 7, "big": 70}[variant]))
  config.rounds = 2
  return config


@pytest.fixture
def toy():
  """Registers the task plug-in "toy" (`toy(config=...)`: with a config) through the public
  registry, as a script would; each test registers the toy it needs, replacing an earlier one."""
  def register(config=None):
    registry.register_task("toy", None, ToySettings, config=config)
  return register


def test_plugin_without_config_is_base_and_its_settings(toy):
  toy()
  config = configs.get_config(task="toy", **{"task.size": 9})
  expected = base.get_config().to_dict() | {"task": {"name": "toy", "size": 9, "scale": 1.0}}
  assert config.to_dict() == expected
  assert configs.settings(config.task) == ToySettings(9, 1.0)
  with pytest.raises(ValueError, match="ships no config, so it has no variant 'big'"):
    load.task_config("toy", "big")


def test_a_plugin_named_as_a_configs_module_starts_from_the_defaults():
  """A plug-in task "base" (or "load", "cli") is no built-in task: amplify.configs' own modules
  are not its config."""
  registry.register_task("base", None, ToySettings)
  try:
    assert configs.get_config(task="base").task.to_dict() == {"name": "base", "size": 7,
                                                             "scale": 1.0}
  finally:
    registry._REGISTERED[registry.TASK_GROUP].pop("base")


@pytest.mark.parametrize("as_module", [False, True])
def test_plugin_ships_its_config(toy, monkeypatch, as_module):
  if as_module:
    monkeypatch.setitem(sys.modules, "toy_configs", types.SimpleNamespace(get_config=_toy_config))
  toy(config="toy_configs" if as_module else _toy_config)
  config = configs.get_config(task="toy")
  assert (config.rounds, configs.settings(config.task)) == (2, ToySettings(7))
  assert load.task_config("toy", "big").task.size == 70
  assert cli.config_from_flags(["prog", "--task=toy", "--task.scale=2"]).task.scale == 2.0


def test_a_plugin_s_setting_named_name_is_refused():
  @dataclasses.dataclass(frozen=True)
  class Named:
    name: str = "alice"
  with pytest.raises(ValueError, match=r"plug-in 'mine': its settings have a field 'name'"):
    base.block("mine", Named)


def test_settings_refuses_a_field_the_plugin_has_not():
  block = ml_collections.ConfigDict({"name": "noisy", "noise_rate": 0.1, "typo": 1})
  with pytest.raises(ValueError, match=r"--oracle.typo: oracle 'noisy' has no such setting; its "
                     r"settings are \['--oracle.noise_rate'\]"):
    configs.settings(block)


# -- config.json -----------------------------------------------------------------------------

def test_config_json_round_trip_and_version(tmp_path):
  config = configs.get_config("permutation_tiny", oracle="noisy")
  saved = configs.to_dict(config)
  assert saved["config_version"] == configs.CONFIG_VERSION == 2
  assert configs.from_dict(saved, str(tmp_path)).to_dict() == config.to_dict()
  assert '"config_version": 2' in configs.to_json(config)
  flat = {"task": "lexicon", "oracle": "scripted", "seed": 0, "label_size": 16384}
  with pytest.raises(ValueError, match=f"^workdir {tmp_path} was made by an older amplify \\(flat "
                     r"config\): use a new --workdir$"):
    configs.check_version(flat, str(tmp_path))
  with pytest.raises(ValueError, match="config_version 3"):
    configs.check_version({"config_version": 3}, "w")


# -- the command line ------------------------------------------------------------------------

def _parse(*args):
  return cli.config_from_flags(["prog", *args])  # a fresh FlagValues each time


@pytest.mark.parametrize("args,path,value", [
    (["--task=permutation"], "task.num_elements", 8),
    (["--task=permutation"], "rounds", 6),
    (["--preset=permutation_tiny"], "task.k_bits", 2),
    (["--oracle=noisy"], "oracle.noise_rate", 0.1),
    (["--oracle=noisy", "--oracle.noise_rate=0.2"], "oracle.noise_rate", 0.2),
    (["--oracle.noise_rate=0.3", "--oracle=noisy"], "oracle.noise_rate", 0.3),
    (["--config.oracle.name=sloppy", "--oracle.from_difficulty=2"], "oracle.from_difficulty", 2),
    (["--oracle_store=/tmp/a.sqlite"], "oracle_store", "/tmp/a.sqlite"),
    (["--arm=raw_d"], "arm", "raw_d"),
    (["--seed=4"], "seed", 4),
    (["--rounds", "2"], "rounds", 2),
    (["--nobaselines"], "baselines", False),
    (["--baselines=false"], "baselines", False),
    (["--nogate"], "type2.gate", False),
    (["--task.num_entities=64"], "task.num_entities", 64),
    (["--config.task.num_entities=64"], "task.num_entities", 64),
    (["--config.train.total_steps=3000"], "train.total_steps", 3000),
    (["--config.train.learning_rate=1"], "train.learning_rate", 1.0),
    (["--config.train.total_steps", "3000"], "train.total_steps", 3000),
    (["--noconfig.train.augment"], "train.augment", False),
    (["--config=amplify/configs/permutation.py:paper"], "model.depth", 6),
    (["--config=amplify/configs/lexicon.py"], "task.num_entities", 256),
    (["--config=amplify/configs/lexicon.py:tiny", "--task=permutation"], "task.k_bits", 4),
    (["--seed=9", "--config.seed=4"], "seed", 4),  # --config.PATH is applied last
    (["--config.seed=4", "--config.seed=5"], "seed", 5),  # the last given wins
])
def test_cli_flags(args, path, value):
  config = _parse(*args)
  assert (_at(config, path), type(_at(config, path))) == (value, type(value))


def test_cli_equals_the_python_api():
  config = _parse("--preset=lexicon_tiny", "--oracle=noisy", "--oracle.noise_rate=0.5",
                  "--rounds=1", "--config.train.total_steps=20", "--task.num_entities=64")
  expected = configs.get_config("lexicon_tiny", oracle="noisy", noise_rate=0.5, rounds=1,
                                total_steps=20, num_entities=64)
  assert configs.to_dict(config) == configs.to_dict(expected)
  with pytest.raises(AttributeError):
    config.new_field = 1


def test_cli_reads_a_users_config_file(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text("from amplify.configs import lexicon\n"
                  "def get_config(variant='small'):\n"
                  "  config = lexicon.get_config('tiny')\n"
                  "  config.rounds = {'small': 1, 'big': 4}[variant]\n"
                  "  return config\n")
  assert _parse(f"--config={path}").rounds == 1
  assert _parse(f"--config={path}:big", "--config.label.size=64").label.size == 64


@pytest.mark.parametrize("body, message", [
    ("def get_config(:\n", r"mine.py failed \(SyntaxError: "),
    ("def get_config():\n  return 1 / 0\n", r"mine.py failed \(ZeroDivisionError: division by "),
    ("from amplify.configs import lexicon\ndef get_config():\n  config = lexicon.get_config()\n"
     "  config.train.total_step = 3\n  return config\n",
     r"get_config\(\) sets \['train.total_step'\], which amplify has not \(misspelt\?\)"),
    ("import ml_collections\ndef get_config():\n"
     "  return ml_collections.ConfigDict({'task': {'name': 'lexicon'}})\n",
     r"get_config\(\) lacks \['arm', "),
])
def test_a_config_file_that_fails_or_misspells_a_field_is_one_line(tmp_path, body, message):
  path = tmp_path / "mine.py"
  path.write_text(body)
  with pytest.raises(ValueError, match=message):
    _parse(f"--config={path}")
  (tmp_path / "notes.md").write_text("# not a config\n")
  with pytest.raises(ValueError, match=r"notes.md: not a Python file: "):
    _parse(f"--config={tmp_path / 'notes.md'}")


@pytest.mark.parametrize("args,message", [
    (["--bogus=1"], r"^unknown flag --bogus: set a field as --config.PATH=VALUE \(fields: arm, "),
    (["--label_size=5"], r"^unknown flag --label_size: did you mean --config.label.size\?$"),
    (["--config.train.bogus=1"], r"^--config.train.bogus: no such field \(config.train has \["),
    (["--config.nope.x=1"], r"^--config.nope.x: no such field \(the config has \['arm', "),
    (["--oracle.noise_rate=0.1"], r"^--oracle.noise_rate: oracle 'scripted' has no such setting; "
                                  r"its settings are none"),
    (["--task.bogus=1"], r"^--task.bogus: task 'lexicon' has no such setting; its settings are "
                         r"\['--task.label_noise', "),
    (["--seed=abc"], r"^flag --seed=abc: invalid literal for int"),
    (["--config.seed=abc"], r"^flag --config.seed=abc: invalid literal for int"),
    (["--config.seed=1.5"], r"^flag --config.seed=1.5"),
    (["--preset=x"], r"^unknown preset 'x' \(--preset\)"),
    (["--preset=lexicon", "--config=amplify/configs/lexicon.py"], r"give one of them"),
    (["--task=nope"], r"^unknown task 'nope' \(--task\); choose one of"),
    (["--oracle=nope"], r"^unknown oracle 'nope' \(--oracle\); choose one of"),
    (["--config=amplify/configs/lexicon.py:vast"], r"^lexicon.py: no variant 'vast'"),
    (["--config=nowhere.py"], r"^--config=nowhere.py: no such file"),
    (["--rounds=0"], r"^--rounds=0: must be a positive integer"),
    (["--config.model.width=30"], r"^--config.model.width=30 is not divisible"),
])
def test_cli_bad_flag_is_one_line_and_exit_2(args, message, capsys):
  fv = flags.FlagValues()
  with pytest.raises(SystemExit) as exit_:
    cli.flags_parser(["prog", *args], fv)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and err.startswith("error: ")
  assert re.search(message, err.removeprefix("error: ").strip()), err


def test_cli_leaves_positional_arguments_and_known_flags():
  fv = flags.FlagValues()
  flags.DEFINE_string("workdir", None, "where", flag_values=fv)
  rest = cli.parse(["prog", "--workdir=/tmp/w", "--rounds=2", "extra"], fv)
  assert (rest, fv.workdir, fv.config.rounds) == (["prog", "extra"], "/tmp/w", 2)
  assert cli.config_from_flags(flag_values=fv) is fv.config


def test_cli_parses_a_flag_values_once():
  fv = flags.FlagValues()
  cli.parse(["prog"], fv)
  with pytest.raises(ValueError, match="parsed before; pass a fresh"):
    cli.parse(["prog"], fv)
