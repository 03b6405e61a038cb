"""H^A, the amplified human: the oracle H + the last distilled policy pi + Mz.

`Amplifier.label` labels a whole batch of D* questions: H's decomposition runs as array
code over the batch, each subquestion slot is one batched policy call, and each look-up slot one
batched Mz call. With a jittable oracle the whole of H^A is one compiled program.
Round 0 has no policy: every ask is answered IDK, so H answers only what look-ups settle.
"""
from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from amplify.learn.mesh import split_rows, whole
from amplify.learn.mz import IndexedModel, shown
from amplify.oracles.base import Oracle, Question, answer_problem, is_per_question
from amplify.oracles.per_question import (OracleError, ReplayOracle, RowTranscript, Stopped,
                                           label_per_question)
from amplify.oracles.tools import BatchTools, Transcript, decode_rows, encode_rows, place
from amplify.files.store import question_keys, tools_version
from amplify.types import IDK, Inputs, Spec


@dataclasses.dataclass(frozen=True)
class Budget:
  max_asks: int
  max_lookups: int


@dataclasses.dataclass
class Labels:
  """answers int32[B, La] (IDK where H^A can't answer), the transcript, and counts of what the
  answer store and the oracle did (oracle_calls: questions H was asked, answers_reused: rows
  answered from the store, replay_misses, skipped), which override the transcript's sums."""
  answers: jax.Array
  transcript: Transcript
  counts: dict = dataclasses.field(default_factory=dict)

  def cost(self) -> dict[str, int]:
    return {"oracle_calls": int(self.answers.shape[0]),
            "asks": int(self.transcript.asked.sum()),
            "lookups": int(self.transcript.looked_up.sum()),
            "budget_overruns": int(self.transcript.overruns.sum()),
            **self.counts}




def _policy_answers(spec: Spec, difficulty, graphdef, view, params, competent, context, q):
  """pi_{r-1}'s answers to subquestions q int32[B, Lq] about examples with `context`; IDK where
  pi is not competent at q's difficulty, and everywhere in round 0 (graphdef None)."""
  if graphdef is None:  # round 0: no policy yet
    return jnp.full((q.shape[0], spec.answer_len), IDK, jnp.int32)
  seen = shown(view, split_rows(Inputs(context, q)))
  answers = jnp.argmax(nnx.merge(graphdef, params)(seen.context, seen.questions), -1)
  return jnp.where(competent[difficulty(q)][:, None], answers.astype(jnp.int32), IDK)


def _lookup(mz: IndexedModel, keys: jax.Array, context) -> jax.Array:
  return mz.lookup(keys, context)


def _amplified_answers(oracle: Oracle, spec: Spec, budget: Budget, difficulty, graphdef,
                       mz: IndexedModel, view, params, competent: jax.Array, inputs: Inputs,
                       key: jax.Array, ask=None, lookup=_lookup) -> tuple[jax.Array, Transcript]:
  """H's answers to `inputs` and its transcript. ask(graphdef, view, params, competent, context,
  q) and lookup(mz, keys, context) are pi's and Mz's: compiled ones for an oracle that is not
  compiled whole (else pi would run op by op), traced into its program for one that is."""
  ask = ask or functools.partial(_policy_answers, spec, difficulty)
  inputs = split_rows(inputs)  # each device answers its share of the questions
  ask_fn = functools.partial(ask, graphdef, view, params, competent, inputs.context)
  tools = BatchTools(ask_fn, lambda keys: lookup(mz, keys, inputs.context),
                     inputs.questions.shape[0], max_asks=budget.max_asks,
                     max_lookups=budget.max_lookups)
  answers = oracle.answer(inputs.questions,
                         tools.handle(getattr(oracle, "hands_back", False)), key)
  return whole((answers, tools.transcript(inputs.questions, spec.answer_len)))


@functools.cache
def _compiled(fn, static: int):
  return jax.jit(fn, static_argnums=tuple(range(static)))


def bind(fn, static: int, *args):
  """fn compiled, its first `static` arguments static, with `args` (the first of them) bound. They
  are bound by value where they hash: another run in this process with equal ones (the same task
  object, an equal oracle and budget) finds the programs the first traced in JAX's caches, not
  tracing and lowering them again (a second tiny lexicon run: 3.7 s of its 7.5 s of CPU). Ones that
  do not hash get programs of their own."""
  try:
    hash(args)
  except TypeError:
    return jax.jit(functools.partial(fn, *args), static_argnums=tuple(range(static - len(args))))
  return functools.partial(_compiled(fn, static), *args)


CHUNK = 4096  # questions H^A labels per compiled call


class Amplifier:
  """Binds H (oracle), Mz, the task, a budget, and optionally the answer store;
  `label(inputs, policy, competent, key)` runs H^A on a batch.

  H asks pi only about subquestions of a difficulty pi is competent at: `competent` is a bool
  array indexed by difficulty, set from the IID check of the round that trained pi (its held-out
  agreement with H^A at that difficulty). Other asks come back IDK. A guess passed on as a
  subanswer becomes a wrong label, and a policy trained on labels built from its own guesses
  learns to repeat them (measured in BUILD_NOTES.md).

  A batch-first oracle runs as array code (one compiled program with a jittable one) in this
  process: it is trusted code, like a task. A per-question oracle (`amplify.oracles.per_question`)
  runs question by question with pi's asks batched across the questions in flight; a user's runs
  in a worker process of its own that holds only the channel to its tools. With a store, questions it answers for this oracle and
  these tools are taken from it (`answers_reused`) and only the rest are asked.
  """

  def __init__(self, oracle, mz: IndexedModel, task, budget: Budget, view=None, store=None,
               identity: str = ""):
    """view: what the policy is shown of a subquestion (an `amplify.learn.mz.MzView` for a policy
    that reads Mz; None: the subquestion itself). store: an `amplify.files.store.AnswerStore` or None;
    identity: the oracle's, as the store keys it."""
    self._oracle, self._task, self._budget = oracle, task, budget
    spec = task.spec
    self._mz, self._view = mz, view  # arguments of the compiled programs, not constants in them
    self._store, self._identity = store, identity
    self._where = ""  # "oracle NAME in round R ", for errors
    self._per_question = is_per_question(oracle)
    self._jittable = getattr(oracle, "jittable", False)  # Oracle's; a plug-in may leave it out
    self._ask = bind(_policy_answers, 3, spec, task.difficulty)  # graphdef static too
    self._lookup = jax.jit(_lookup)
    if not self._per_question and not isinstance(oracle, ReplayOracle):
      static = (oracle, spec, budget, task.difficulty)
      self._label = (bind(_amplified_answers, 5, *static) if self._jittable else
                     functools.partial(_amplified_answers, *static, ask=self._ask,
                                       lookup=self._lookup))

  @property
  def shows_progress(self) -> bool:
    """H shows its own progress while it labels (a person's screen, the web pages' line)."""
    return bool(getattr(self._oracle, "shows_progress", False))

  def label(self, inputs: Inputs, policy: nnx.Module | None, competent: jax.Array | None,
            key: jax.Array, progress: dict | None = None, status=lambda text: None) -> Labels:
    """inputs: a batch of D* questions (and episodic context); policy: pi_{r-1}, or None in
    round 0; competent: bool[max_difficulty + 1], the difficulties H may ask pi about.
    progress: what a person's screen shows and errors name ({"round": r, "rounds": n}, r from 0
    as in metrics.jsonl); status(text): hears the questions a batch oracle has answered
    (`amplify.views.progress`)."""
    if policy is None:
      graphdef, params, competent = None, None, None
    else:
      graphdef, params = nnx.split(policy, nnx.Param)
      competent = jnp.asarray(competent)
    tools = (graphdef, params, competent)
    self._where = (f"oracle {getattr(self._oracle, 'name', type(self._oracle).__name__)!r}"
                   + (f" in round {progress['round']} " if progress and "round" in progress
                      else " "))
    if self._store is None and not self._per_question:
      if isinstance(self._oracle, ReplayOracle):
        raise ValueError("--oracle=replay answers from the answer store: pass --oracle_store.")
      return Labels(*self._batch(inputs, tools, key, status),
                    dict(getattr(self._oracle, "last_counts", {})))
    return self._label_with_store(inputs, tools, key, progress or {}, status)

  def _batch(self, inputs: Inputs, tools, key: jax.Array,
             status=lambda text: None) -> tuple[jax.Array, Transcript]:
    graphdef, params, competent = tools
    # Fixed-size chunks: one compiled program for any batch, and memory that does not grow with it
    # (a whole 32k batch at once ran ~5x slower per row on 2 CPU cores than 4k chunks).
    n = inputs.questions.shape[0]
    chunk = n if getattr(self._oracle, "whole_batch", False) else CHUNK
    chunks = []
    for i in range(0, n, chunk):
      part = jax.tree.map(lambda a: a[i:i + chunk], inputs)
      try:
        answers, transcript = self._label(graphdef, self._mz, self._view, params, competent, part,
                                          jax.random.fold_in(key, i))
      except (OracleError, Stopped):
        raise
      except Exception as e:
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise OracleError(
            f"{self._where}raised {type(e).__name__}: {first_line} (on questions {i}.."
            f"{i + part.questions.shape[0] - 1}; the first reads "
            f"{self._shown(part.questions[0])}): fix the oracle; everything before this batch "
            "is saved") from e
      if not isinstance(answers, (jax.Array, np.ndarray)):  # a list would pass as a pytree
        raise OracleError(
            f"{self._where}returned a {type(answers).__name__}, not an int32[{len(part.questions)}"
            f", {self._task.spec.answer_len}] array (its answers to questions {i}.."
            f"{i + part.questions.shape[0] - 1}): return jnp.asarray(answers, jnp.int32); fix "
            "the oracle; everything before this batch is saved")
      problem = answer_problem(answers, part.questions.shape[0], self._task.spec, i)
      if problem is not None:
        raise OracleError(f"{self._where}gave {problem}: fix the oracle; everything before this "
                          "batch is saved")
      chunks.append((answers, transcript))
      status(f"{i + part.questions.shape[0]}/{n} questions")
    return jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=0), *chunks)

  def _shown(self, question) -> str:
    """A question as a person reads it, for an error message (its tokens if the task can't)."""
    try:
      return repr(self._task.render_question(np.asarray(question)))
    except Exception:
      return str(np.asarray(question).tolist())

  def _label_with_store(self, inputs: Inputs, tools, key: jax.Array, progress: dict,
                        status) -> Labels:
    spec, store = self._task.spec, self._store
    graphdef, params, competent = tools
    n = inputs.questions.shape[0]
    # what H sees through its tools: pi, its competence, Mz (a z* on disk by its digest), and
    # the budget (a person with more asks may answer otherwise)
    version = tools_version(params, competent, type(self._mz).__name__, self._mz,
                            getattr(self._mz, "digest", ""), self._budget.max_asks,
                            self._budget.max_lookups)
    keys = question_keys(np.asarray(inputs.context), np.asarray(inputs.questions))
    source = self._oracle.source if isinstance(self._oracle, ReplayOracle) else self._identity
    found = store.answers(keys, source, version) if store is not None else {}
    answers = np.full((n, spec.answer_len), IDK, np.int32)
    reused = np.asarray([i for i, k in enumerate(keys) if k in found], np.int64)
    parts = []  # (rows, their transcript)
    if len(reused):
      answers[reused] = np.stack([found[keys[i]][0] for i in reused])
      parts.append((reused, decode_rows([found[keys[i]][1] for i in reused], spec.question_len,
                                        spec.answer_len)))
    # the first row of each question the store does not answer is asked; a repeat of it in the
    # batch takes that row's answer (a person never sees the same question twice)
    first: dict[bytes, int] = {}
    for i, k in enumerate(keys):
      if k not in found:
        first.setdefault(k, i)
    missing = np.asarray(sorted(first.values()), np.int64)
    counts = {"answers_reused": len(reused), "oracle_calls": len(missing)}
    fresh = None
    if isinstance(self._oracle, ReplayOracle):
      counts["replay_misses"] = len(missing)
    elif self._per_question:
      new_answers, fresh, counts["skipped"] = self._ask_per_question(
          inputs, tools, missing, keys, version, progress | {"reused": len(reused)})
      answers[missing] = new_answers
    elif len(missing):
      t0 = time.time()
      # a compiled oracle labels the batch's shape (its rows asked first, row 0 repeated after
      # them): no new program per count of missing rows
      pad = n - len(missing) if self._jittable else 0
      rows = np.concatenate([missing, np.zeros(pad, np.int64)])
      new_answers, fresh = self._batch(jax.tree.map(lambda a: a[rows], inputs), tools, key,
                                       status)
      new_answers, fresh = jax.tree.map(lambda a: a[:len(missing)], (new_answers, fresh))
      counts |= getattr(self._oracle, "last_counts", {})
      answers[missing] = new_answers = np.asarray(new_answers)
      if store is not None:
        store.put_batch(list(zip([keys[i] for i in missing], new_answers, encode_rows(fresh))),
                        self._identity, version, (time.time() - t0) / len(missing))
    if fresh is not None:
      parts.append((missing, fresh))
      # costs are what this labelling spent: a reused answer's transcript cost nothing now
      counts |= {"asks": int(np.sum(fresh.asked)), "lookups": int(np.sum(fresh.looked_up)),
                 "budget_overruns": int(np.sum(fresh.overruns))}
    else:
      counts |= {"asks": 0, "lookups": 0, "budget_overruns": 0}
    repeats = np.asarray([i for i, k in enumerate(keys) if k in first and first[k] != i],
                         np.int64)
    if len(repeats):
      sources = np.asarray([first[keys[i]] for i in repeats])
      answers[repeats] = answers[sources]
      whole = place(parts, n)
      parts.append((repeats, jax.tree.map(lambda a: np.asarray(a)[sources], whole)))
    return Labels(jnp.asarray(answers), place(parts, n), counts)

  def _ask_per_question(self, inputs, tools, missing, keys, version, progress):
    """Runs a per-question oracle on the `missing` rows; returns their answers, their transcript
    and how many the oracle skipped."""
    graphdef, params, competent = tools
    task, store, spec = self._task, self._store, self._task.spec
    questions_np, context = np.asarray(inputs.questions), inputs.context
    difficulty = np.asarray(task.difficulty(inputs.questions))
    questions = [Question(task.render_question(questions_np[i]), questions_np[i],
                          int(difficulty[i]), int(i), self._budget.max_asks,
                          self._budget.max_lookups) for i in missing]

    def padded(rows_, payload, fn):
      size = max(8, 1 << (len(rows_) - 1).bit_length())  # few shapes, few compilations
      index = np.zeros(size, np.int64)
      index[:len(rows_)] = rows_
      full = np.zeros((size,) + payload.shape[1:], np.int32)
      full[:len(rows_)] = payload
      return np.asarray(fn(jnp.asarray(full), jax.tree.map(lambda a: a[index], context)))[
          :len(rows_)]

    serve_asks = lambda rows_, q: padded(rows_, q, lambda q_, c: self._ask(
        graphdef, self._view, params, competent, c, q_))
    serve_lookups = lambda rows_, k: padded(rows_, k, lambda k_, c: self._lookup(self._mz, k_, c))

    def on_event(row: int, kind: str, payload) -> None:
      payload = dict(payload or {})
      answer = payload.pop("answer", None)
      record = payload.pop("transcript", None)
      blob = None if record is None else encode_rows(
          transcript_of([record], self._budget, spec))[0]
      if store is not None:
        store.event(keys[row], self._identity, version, kind,
                    payload | ({"answer": task.render_answer(answer)} if answer is not None
                               else {}), answer=answer, transcript=blob,
                    seconds=payload.get("seconds"))

    if hasattr(self._oracle, "begin"):  # a person's screen: what the run is doing
      self._oracle.begin(task, progress | {"questions": len(questions)})
    out = label_per_question(self._oracle, task, questions, serve_asks, serve_lookups, on_event,
                             self._where)
    return (out.answers, transcript_of([r or RowTranscript() for r in out.transcripts],
                                       self._budget, spec), out.skipped)


def transcript_of(rows: list[RowTranscript], budget: Budget, spec: Spec) -> Transcript:
  """A per-question oracle's row transcripts as arrays: budget.max_asks ask slots and
  budget.max_lookups look-up slots, the entries used first."""
  s, t, n = budget.max_asks, budget.max_lookups, len(rows)
  out = Transcript(np.zeros((n, s, spec.question_len), np.int32),
                   np.zeros((n, s, spec.answer_len), np.int32), np.zeros((n, s), bool),
                   np.zeros((n, t), np.int32), np.zeros((n, t), np.int32), np.zeros((n, t), bool),
                   np.zeros(n, np.int32))
  for i, row in enumerate(rows):
    for j, (q, a) in enumerate(row.asks[:s]):
      out.subquestions[i, j], out.subanswers[i, j], out.asked[i, j] = q, a, True
    for j, (k, v) in enumerate(row.lookups[:t]):
      out.lookup_keys[i, j], out.lookup_values[i, j], out.looked_up[i, j] = k, v, True
    out.overruns[i] = row.overruns
  return out
