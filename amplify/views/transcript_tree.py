"""One question's H^A transcript as a tree of text (`python -m amplify.views.report --workdir=DIR
--tree=ROUND:ROW`): the question and H^A's answer, each subquestion H asked pi with pi's answer,
and each fact H read in Mz, written in the task's own words (`amplify.tasks.base.Text`).

The transcripts are DIR/transcripts/round_R.npz (`amplify.loop.evaluate.save`); the task is rebuilt from
DIR/config.json through its plug-in, and the ground truth its factory returns is dropped unread.
In a latent world (no per-example context) a subquestion that is itself a question of that round
or an earlier one is expanded below its node with that row's own transcript (how H^A answered it
there; earlier rounds' labels are what pi learnt from), marked "[round R row I]", with H^A's
answer there where it differs from pi's. An episodic task's subquestions depend on each
example's context, which the transcripts do not keep: one level only.
"""
from __future__ import annotations

import os
import re

import numpy as np

from amplify.files.jsonio import check_workdir_layout, read_json

TRANSCRIPT_FIELDS = ("questions", "answers", "subquestions", "subanswers", "asked", "lookup_keys",
                     "lookup_values", "looked_up", "overruns")


def parse_spec(spec: str) -> tuple[int, int]:
  """'ROUND:ROW' -> (round, row); a ValueError that shows the form."""
  parts = spec.split(":")
  if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
    raise ValueError(f"--tree={spec!r}: write ROUND:ROW, two numbers >= 0 (e.g. --tree=2:17, "
                     "question 17 of round 2's transcripts).")
  return int(parts[0]), int(parts[1])


def load_task(workdir: str):
  """The run's task, rebuilt from config.json as the referee built it: in the world of the seed
  and this user's referee secret where it exists (`amplify.truth.referee`; a workdir from another
  machine renders in the seed's world alone, the same words for a built-in task). The factory also
  returns the world's ground truth: it is dropped here, unread. Imports JAX (the tasks need it),
  once the transcripts are found: a bad --tree is refused at once."""
  from amplify import configs  # pylint: disable=g-import-not-at-top
  from amplify.tasks import make_task  # pylint: disable=g-import-not-at-top
  from amplify.truth.referee import read_secret, secret_path  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no config.json in {workdir!r}: the task cannot be rebuilt to show "
                            "its questions; point --workdir at a run.")
  config = configs.from_dict(read_json(path, "the run's config"), workdir)
  secret = read_secret(create=False) if os.path.exists(secret_path()) else None
  return make_task(config, secret)[0]


class Transcripts:
  """The rounds' saved transcripts of one workdir, each round read once when first needed."""

  def __init__(self, workdir: str):
    self._dir = os.path.join(workdir, "transcripts")
    if os.path.isdir(workdir):
      check_workdir_layout(workdir)  # transcripts a file: move it away
    if not os.path.isdir(self._dir):
      raise FileNotFoundError(f"no transcripts in {workdir!r}: a run saves them per round, in "
                              "transcripts/round_R.npz; point --workdir at a run with a finished "
                              "round.")
    self.rounds = sorted(int(m[1]) for name in os.listdir(self._dir)
                         if (m := re.fullmatch(r"round_(\d+)\.npz", name)))
    self._loaded: dict[int, dict[str, np.ndarray]] = {}
    self._index: dict[int, dict[bytes, int]] = {}

  def load(self, r: int) -> dict[str, np.ndarray]:
    """Round r's transcript arrays (TRANSCRIPT_FIELDS); a ValueError naming the rounds saved."""
    if r not in self.rounds:
      saved = ", ".join(map(str, self.rounds)) or "none"
      raise ValueError(f"no transcripts of round {r} in {self._dir} (rounds saved: {saved}).")
    if r not in self._loaded:
      path = os.path.join(self._dir, f"round_{r}.npz")
      try:
        with np.load(path) as f:
          missing = [k for k in TRANSCRIPT_FIELDS if k not in f.files]
          if not missing:
            self._loaded[r] = {k: f[k] for k in TRANSCRIPT_FIELDS}
      except Exception as e:  # not an .npz (zipfile's errors: no OSError, no ValueError)
        raise ValueError(f"{path} cannot be read ({type(e).__name__}): not a transcript file "
                         "amplify.loop.evaluate.save wrote.") from None
      if missing:
        raise ValueError(f"{path} lacks {missing}: not a transcript file "
                         "amplify.loop.evaluate.save wrote.")
    return self._loaded[r]

  def find(self, question: np.ndarray, newest: int) -> tuple[int, int] | None:
    """(round, row) of `question` among the questions of rounds `newest`, newest - 1, ... 0 (the
    first row of the newest round that has it), or None."""
    for r in (r for r in reversed(self.rounds) if r <= newest):
      questions = self.load(r)["questions"]
      if r not in self._index:
        self._index[r] = {q.tobytes(): i for i, q in reversed(list(enumerate(questions)))}
      row = self._index[r].get(np.asarray(question, questions.dtype).tobytes())
      if row is not None:
        return r, row
    return None


def _node(task, transcripts: Transcripts, r: int, row: int, expand: bool,
          path: frozenset) -> list[tuple[str, list]]:
  """The children of question `row` of round r: its asks (expanded where `expand` finds the
  subquestion among the saved questions, and it is not already on the `path` from the root), its
  look-ups, and the asks and look-ups it tried past its budget."""
  t = transcripts.load(r)
  children = []
  for s in np.flatnonzero(t["asked"][row]):
    subquestion, subanswer = t["subquestions"][row, s], t["subanswers"][row, s]
    label = f"ask: {task.render_question(subquestion)} -> {task.render_answer(subanswer)}"
    found = transcripts.find(subquestion, r) if expand else None
    if found is None or found in path:
      children.append((label, []))
      continue
    fr, frow = found
    there = transcripts.load(fr)["answers"][frow]
    label += (f"    [round {fr} row {frow}" + ("]" if np.array_equal(there, subanswer) else
                                                f": H^A answered {task.render_answer(there)}]"))
    children.append((label, _node(task, transcripts, fr, frow, expand, path | {found})))
  for s in np.flatnonzero(t["looked_up"][row]):
    children.append(("look up: " + task.render_lookup(int(t["lookup_keys"][row, s]),
                                                      int(t["lookup_values"][row, s])), []))
  if overruns := int(t["overruns"][row]):
    children.append((f"over budget: {overruns} ask(s) / look-up(s) refused (IDK)", []))
  return children


def _draw(label: str, children: list[tuple[str, list]]) -> list[str]:
  """A node and its children, (label, children) each, as lines joined by box-drawing branches."""
  lines = [label]
  for i, (child, grandchildren) in enumerate(children):
    last = i == len(children) - 1
    below = _draw(child, grandchildren)
    lines.append(("└── " if last else "├── ") + below[0])
    lines += [("    " if last else "│   ") + line for line in below[1:]]
  return lines


def render(workdir: str, spec: str) -> str:
  """Question ROW of round ROUND (`spec`, 'ROUND:ROW') of `workdir`'s transcripts as a tree."""
  r, row = parse_spec(spec)
  transcripts = Transcripts(workdir)
  t = transcripts.load(r)
  n = t["questions"].shape[0]
  if row >= n:
    raise ValueError(f"--tree={spec}: round {r} has {n} questions (rows 0-{n - 1}).")
  task = load_task(workdir)
  latent = task.spec.regime == "latent" and task.spec.context_size == 0  # tasks.base.LATENT
  root = (f"{task.render_question(t['questions'][row])} -> "
          f"{task.render_answer(t['answers'][row])}")
  lines = [f"round {r} row {row} ({task.name}): H^A's answer, H's asks of pi and look-ups in Mz",
           *_draw(root, _node(task, transcripts, r, row, latent, frozenset({(r, row)})))]
  if not latent:
    lines.append("(an episodic task: subquestions are not expanded; they depend on each "
                 "example's context, which the transcripts do not keep)")
  return "\n".join(lines)
