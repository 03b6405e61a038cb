"""Ground truth reaches only the evaluator and the named baselines, for every task and oracle."""
import ast
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import amplify
import helpers
import spy_oracle
from amplify import configs as config_lib
from amplify.learn import prior
from amplify.loop import run as loop
from amplify.loop.setup import begin
from amplify.loop.arms import ARMS
from amplify.learn.amplifier import Amplifier, Budget
from amplify.truth.evaluator import Evaluator
from amplify.learn.mz import ExactIndex, Table
from amplify import registry
from amplify.oracles.make import human_model, make_oracle
from amplify.learn.policy import make_policy
from amplify.tasks import make_task
from amplify.truth.referee import read_secret
from amplify.types import LATENT

PACKAGE = pathlib.Path(amplify.__file__).parent
# The modules that label, fit or train: none of them may mention ground truth at all.
LABELLING_AND_TRAINING = ["amplifier.py", "distill.py", "mz.py", "policy.py", "prior.py",
                          "oracles"]


_MADE = {}


def _made(config):
  """(task, truth) of `config`, built once per task setting for the module's tests (a build
  costs more than most checks that read it; none of them changes either for good)."""
  made = (str(config.task), config.seed)
  if made not in _MADE:
    _MADE[made] = make_task(config)
  return _MADE[made]


def _amplifier(config):
  task, truth = _made(config)
  if task.spec.context_size:
    mz = ExactIndex()
  else:  # a latent world: z* fitted from D (as rounds.learn_prior does), never the true world
    mz, _, _ = prior.fit(human_model(make_oracle(config, task), task), Table(task.spec),
                         prior.blocks(task), steps=20, learning_rate=0.3)
  amplifier = Amplifier(make_oracle(config, task), mz, task, Budget(4, 4))
  return task, truth, amplifier


TASKS = registry.names(registry.TASK_GROUP)
# every built-in oracle, with the settings it needs to be built
ORACLES = {"scripted": {}, "noisy": {}, "sloppy": {}, "interactive": {}, "replay": {}, "web": {},
           "learned": {}, "callable": {"oracle.fn": "oracle_fns:lexicon_by_text"}}


def test_every_built_in_oracle_is_checked():
  assert sorted(ORACLES) == registry.names(registry.ORACLE_GROUP)


@pytest.mark.parametrize("task_name", TASKS)
@pytest.mark.parametrize("oracle_name", sorted(ORACLES))
def test_amplifier_holds_no_handle_to_ground_truth(task_name, oracle_name):
  config = config_lib.get_config(f"{task_name}_tiny", oracle=oracle_name, **ORACLES[oracle_name])
  task, truth, amplifier = _amplifier(config)
  reachable = helpers.reachable(amplifier)
  assert any(o is task for o in reachable)  # the walk does reach what the amplifier holds
  assert not any(isinstance(o, type(truth)) for o in reachable)


@pytest.mark.parametrize("task_name", TASKS)
def test_corrupting_ground_truth_leaves_amplified_labels_unchanged(task_name, monkeypatch):
  config = config_lib.get_config(f"{task_name}_tiny")
  task, truth, amplifier = _amplifier(config)
  inputs = task.deployment_questions(jax.random.key(0), 256)
  policy = make_policy(task.spec, config.model, jax.random.key(1))
  key = jax.random.key(2)
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  before = amplifier.label(inputs, policy, competent, key).answers
  evaluator = Evaluator(task, truth)
  accuracy_before = evaluator.accuracy(inputs, before)

  garbage = lambda self, inputs: task.random_answers(jax.random.key(3), inputs.questions.shape[0])
  monkeypatch.setattr(type(truth), "answers", garbage)
  _, _, fresh = _amplifier(config)  # a new jit: it retraces, so a read of the truth would show
  after = fresh.label(inputs, policy, competent, key).answers
  assert np.array_equal(before, after)
  assert evaluator.accuracy(inputs, after) != accuracy_before  # the corruption did take effect


@pytest.mark.parametrize("task_name", TASKS)
def test_human_code_calls_no_helper_of_the_truth(task_name):
  """H's decomposition and model live beside the task's truth; they must not call its helpers."""
  task, truth = make_task(config_lib.get_config(f"{task_name}_tiny"))
  module = sys.modules[type(truth).__module__]
  helpers = {name for name in type(truth).answers.__code__.co_names
             if callable(getattr(module, name, None))}
  assert helpers  # the truth does call a helper of its module; the check below is not vacuous
  human = ["human_answer", "human_log_prior", "human_log_likelihood", "observations",
           "human_answer_from_d", "raw_observations", "_answer"]
  for method in (getattr(type(task), m) for m in human if hasattr(type(task), m)):
    assert not helpers & _reached(method.__code__, module, type(task)), method.__name__


def _reached(code, module, cls) -> set[str]:
  """The names `code` calls, and those its callees call, transitively through the functions of
  `module` and the methods of `cls` (nested functions and lambdas included): a helper of the truth
  behind one of H's own helpers is reached too."""
  names, todo, seen = set(), [code], set()
  while todo:
    code = todo.pop()
    if code in seen:
      continue
    seen.add(code)
    todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    for name in code.co_names:
      names.add(name)
      fn = getattr(cls, name, None) or getattr(module, name, None)
      fn = getattr(fn, "__func__", fn)
      if getattr(fn, "__module__", None) == module.__name__ and hasattr(fn, "__code__"):
        todo.append(fn.__code__)
  return names


def _latent(task_name: str) -> bool:
  """The task keeps a latent world (a task is built when a test asks, not at collection: a
  build costs about a second in each worker)."""
  return _made(config_lib.get_config(f"{task_name}_tiny"))[0].spec.regime == LATENT


def _needs_latent(task_name: str) -> None:
  if not _latent(task_name):
    pytest.skip(f"{task_name} keeps no latent world")


@pytest.mark.parametrize("task_name", TASKS)
def test_the_true_world_is_unreachable_and_changing_it_changes_no_fit(task_name, monkeypatch):
  _needs_latent(task_name)
  config = config_lib.get_config(f"{task_name}_tiny")
  task, truth, amplifier = _amplifier(config)
  held = [v for v in vars(truth).values() if isinstance(v, (jax.Array, np.ndarray, dict))]
  assert held  # the truth holds the world (and any labels) in these
  reachable = helpers.reachable(amplifier)
  assert not any(o is v for o in reachable for v in held)

  fit = lambda: prior.fit(human_model(make_oracle(config, task), task), Table(task.spec),
                          prior.blocks(task), steps=20, learning_rate=0.3)[0]
  before = fit()
  evaluator = Evaluator(task, truth)
  score = evaluator.z_accuracy(before)
  for name, value in vars(truth).items():  # another world, everywhere the truth keeps it
    if isinstance(value, jax.Array):
      monkeypatch.setattr(truth, name, jnp.roll(value, 1))
  np.testing.assert_array_equal(fit().entries, before.entries)
  assert evaluator.z_accuracy(before) != score  # the change did reach the evaluator


def _identifiers(source: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(source.read_text())):
    if isinstance(node, ast.Name):
      names.add(node.id)
    elif isinstance(node, ast.Attribute):
      names.add(node.attr)
    elif isinstance(node, ast.alias):
      names.add(node.name)
    elif isinstance(node, ast.ImportFrom):
      names.add(node.module or "")
    elif isinstance(node, ast.arg):
      names.add(node.arg)
  return names


def test_labelling_and_training_code_never_names_ground_truth():
  for name in LABELLING_AND_TRAINING:
    path = next(PACKAGE.rglob(name))  # learn/*.py, oracles/
    for source in (sorted(path.glob("*.py")) if path.is_dir() else [path]):
      names = " ".join(_identifiers(source)).lower()
      assert "truth" not in names and "evaluator" not in names, source


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_no_arm_hands_ground_truth_to_h_a_or_pi(arm, tmp_path):
  """The run as `rounds.run` builds it, for every arm: nothing reachable from what labels (H^A,
  with pi's view of Mz) or what a phase is handed (the run) is the truth or the true world."""
  config = config_lib.get_config("lexicon_tiny", arm=arm, baselines=False, type2_size=0)
  checked = loop.check(config, str(tmp_path))
  try:
    run, _ = begin(config, str(tmp_path), checked)
    # the test's own truth, for its type (the spy below also looks for the world's values)
    _, truth = make_task(config)
    reachable = helpers.reachable(run, depth=16)
    assert any(o is run.amplifier for o in reachable) and any(o is run.task for o in reachable)
    assert not any(isinstance(o, (type(truth), Evaluator)) for o in reachable)
  finally:
    checked.close()


# -- an oracle that goes looking for the truth (tests/spy_oracle.py) ---------------------------

SPY_RUN = """
import json, sys
import spy_oracle
from amplify import configs as config_lib, registry
from amplify.loop import run as loop
from amplify.oracles.per_question import Stopped
registry.register_oracle("spy", spy_oracle.make)
reports = {}
for task, workdir in zip(sys.argv[1::2], sys.argv[2::2]):
  # a latent world's z* fitted to differ from the true world (the same world: D or the fit differ)
  latent = {"lexicon": {"observations": 1}, "colored_digits": {"prior_steps": 1}}.get(task, {})
  config = config_lib.get_config(task + "_tiny", oracle="spy", rounds=1, total_steps=20,
                                 baselines=False, type2_size=0, **latent)
  try:
    loop.run(config, workdir)
  except Stopped:  # the spy stops the run once it has looked
    pass
  reports[task], spy_oracle.REPORTS[:] = list(spy_oracle.REPORTS), []
print(json.dumps(reports))
"""


def _world_sha(task_name: str) -> str:
  """The run's true world (the referee's: from the seed and the secret), for the spy to look for."""
  _, truth = make_task(config_lib.get_config(f"{task_name}_tiny"), secret=read_secret())
  world = getattr(truth, "world", None)
  return "" if world is None else hashlib.sha256(
      np.asarray(world).astype(np.int32).tobytes()).hexdigest()


@pytest.mark.parametrize("tasks", [TASKS[0::2], TASKS[1::2]], ids=["even", "odd"])
def test_an_oracle_that_looks_for_the_truth_finds_nothing(tmp_path, tasks):
  """For every task, the spy walks the stack, the garbage collector, the task's referrers and
  what its factory was handed, when it labels round 0 of a run in a process of its own: 0 of 4
  routes reach the truth, and each route did look at objects. The tasks run in two processes,
  half in each (the two halves run side by side in the suite's two workers)."""
  env = dict(os.environ, SPY_WORLD_SHA256=json.dumps({name: _world_sha(name) for name in tasks}),
             PYTHONPATH=os.pathsep.join([str(pathlib.Path(__file__).parent),
                                         os.environ.get("PYTHONPATH", "")]))
  args = [a for name in tasks for a in (name, str(tmp_path / name))]
  result = subprocess.run([sys.executable, "-c", SPY_RUN, *args], capture_output=True, text=True,
                          env=env, timeout=600)
  assert result.returncode == 0, result.stderr
  reports = json.loads(result.stdout.strip().splitlines()[-1])
  assert sorted(reports) == sorted(tasks)
  for name in filter(_latent, tasks):  # so an array equal to the true world is the truth's
    prior = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
    assert prior["phase"] == "prior" and prior["z_accuracy"] < 1, name
  for name, task_reports in reports.items():
    assert len(task_reports) == 1, name  # the spy looked, when asked to label round 0
    for report in task_reports:
      assert {route: report[route]["found"] for route in ROUTES} == {r: [] for r in ROUTES}, name
      assert report["stack"]["frames"] > 5 and report["factory"]["configs"] == 0
      assert all(report[route]["scanned"] > 3 for route in ROUTES)
      assert report["gc"]["scanned"] > 10_000


ROUTES = ("stack", "gc", "referrers", "factory")


def test_the_spy_finds_a_truth_that_is_there():
  """The same search where the truth is alive (this process holds one, a local above the spy,
  referring to the task), and where the factory is handed a config: every route finds it."""
  config = config_lib.get_config("lexicon_tiny")
  task, truth = make_task(config)
  evaluator = Evaluator(task, truth)  # refers to the task: a referrer of the task reaches it
  report = spy_oracle.search(task, (task, config), _world_sha("lexicon"))
  assert all(report[route]["found"] for route in ROUTES), report
  del evaluator


def test_the_spy_finds_the_true_world_alone():
  """Where only a copy of the true world's array is alive (no truth object: a local above the
  spy, in a list that also refers to the task), the stack, gc and referrer routes find it by its
  contents: the array route of the search above can find what it looks for."""
  config = config_lib.get_config("lexicon_tiny")
  task, truth = make_task(config)
  world = np.array(truth.world)
  sha = hashlib.sha256(world.astype(np.int32).tobytes()).hexdigest()
  del truth
  holder = [task, world]  # gc-tracked, and a referrer of the task
  report = spy_oracle.search(task, (task,), sha)
  for route in ("stack", "gc", "referrers"):  # (other tests' truths may be alive in this worker)
    assert "ndarray" in report[route]["found"], (route, report)
  del holder


def test_the_referee_answers_no_more_requests_than_a_run_makes(tmp_path):
  """An oracle that found the referee's handle and asks it for scores takes requests the run
  then lacks: the run stops with an error that says so."""
  config = config_lib.get_config("permutation_tiny", rounds=1, baselines=False, type2_size=0)
  checked = loop.check(config, str(tmp_path))
  task, referee = checked.task, checked.referee
  inputs = task.evaluation_questions(jax.random.key(0), 4)
  for _ in range(3):  # what one round's evaluation may ask
    referee.accuracy(inputs, task.random_answers(jax.random.key(1), 4))
  with pytest.raises(loop.RunError, match=r"more 'accuracy' requests than a run makes: "
                                            r"something besides the run has asked the referee"):
    loop.run(config, str(tmp_path), checked)


class _Opens:
  """Unpickled, opens (creates) a file: code a crafted request would run in the referee."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return open, (self.path, "w")


def test_a_crafted_request_runs_no_code_in_the_referee(tmp_path):
  """A request holding anything but what a run sends (here a pickle that calls `open`) is refused
  before it is read, and spends nothing: the referee still answers the run's own requests."""
  config = config_lib.get_config("permutation_tiny", rounds=1, baselines=False, type2_size=0)
  checked = loop.check(config, str(tmp_path / "w"))
  task, referee = checked.task, checked.referee
  marker = tmp_path / "written-by-the-referee"
  with pytest.raises(RuntimeError, match=r"UnpicklingError: a request holding io.open, which no run sends"):
    referee.accuracy(_Opens(str(marker)), None)
  assert not marker.exists()
  inputs = task.evaluation_questions(jax.random.key(0), 4)
  assert 0 <= referee.accuracy(inputs, task.random_answers(jax.random.key(1), 4)) <= 1
  referee.close()


def _labels(truth, questions) -> bool:
  """Whether `truth` answers `questions` (colored digits' answers only the images of its draw)."""
  try:
    truth.answers(questions)
  except ValueError:
    return False
  return True


@pytest.mark.parametrize("task_name", TASKS)
def test_the_run_world_is_the_referee_and_the_run_config_rebuilds_another(task_name, tmp_path):
  """The run's task comes from the referee process, in the world of the seed and the secret: an
  oracle that reads the run's config.json and calls the task's factory with the seed (what
  `make_task(config)` does without the secret) gets another world, whose answers the referee
  scores as wrong (colored digits: its z is the protocol's rule in every world, but the other
  world cannot label the run's D* pools, and on the images both drew its labels score under
  0.9)."""
  _needs_latent(task_name)
  config = config_lib.get_config(f"{task_name}_tiny", rounds=1, baselines=False, type2_size=0)
  checked = loop.check(config, str(tmp_path))
  try:
    begin(config, str(tmp_path), checked)  # writes config.json, as a run does
    read = json.loads((tmp_path / "config.json").read_text())
    plugin = registry.task_plugin(read["task"]["name"])
    settings = plugin.settings(**{k: v for k, v in read["task"].items() if k != "name"})
    rebuilt, guess = plugin.make(settings, jax.random.fold_in(jax.random.key(read["seed"]), 3))
    d = lambda task: np.asarray(task.observations()[1])
    assert not np.array_equal(d(rebuilt), d(checked.task))
    assert np.array_equal(d(make_task(config, secret=read_secret())[0]), d(checked.task))
    questions = checked.task.evaluation_questions(jax.random.key(0), 64)
    if task_name == "colored_digits":  # z is the protocol's rule in every world; the draws differ
      with pytest.raises(ValueError, match=r"are not images of D or the D\* pools"):
        guess.answers(questions)  # the run's D* pools are not the other world's
      row = lambda i: jax.tree.map(lambda a: a[i:i + 1], questions)
      known = [i for i in range(64) if _labels(guess, row(i))]  # an image drawn in both worlds
      assert 0 < len(known) < 64
      questions = jax.tree.map(lambda a: a[np.asarray(known)], questions)
    else:
      true_world = np.asarray(make_task(config, secret=read_secret())[1].world)
      assert not np.array_equal(np.asarray(guess.world), true_world)  # another z
    assert checked.referee.accuracy(questions, guess.answers(questions)) < 0.9
  finally:
    checked.close()
