"""H': a network that imitates H's steps, answering most questions in the real H's place
(`--oracle=learned`).

In each batch the real H (the task's scripted H) answers a random share of the questions at each
difficulty; their transcripts are H's steps: ask a subquestion, look a key up, answer.
`StepImitator` learns, from every such transcript so far, to predict H's next step from the question
and the steps taken (each output token is copied from the state or generated: subquestions copy the
question's tokens, answers combine subanswers; the state holds the question and each step's kind and
result). A third of the real H's rows are held out. H' agrees on a row when it takes each of H's
steps there, given the results H's steps got, answer included (H', pi and Mz are deterministic,
so it then answers as H did): the check reads H's recorded steps and calls neither pi nor Mz.
H' is a committee of MEMBERS such networks, each with its own initialisation and minibatches;
the first takes the steps, and H''s confidence in a step is the least probability any member
gives the step's kind or a token it uses. After each fit, H' is trusted at a difficulty down to
the lowest of THRESHOLDS at which it agrees with H on at least `--oracle.agreement` of the
held-out rows it is that confident on (at least MIN_CHECK_ROWS of them). The lowest is 1/2: H'
never takes a step that one of its members finds less likely than not.

Each batch first checks the H' in hand on the held-out rows: a batch whose difficulties that
settles needs no fit. Otherwise H' is fitted on the rows in hand (compute, not real-H calls): up
to `--oracle.steps` steps, in chunks of FIT_CHUNK. After each chunk H' is checked on a sample of
CHECK_ROWS held-out rows: a fit stops early once a chunk changes which of them H' answers as H
did, sure enough to (`_answered`), on fewer than MIN_GAIN / (the fit's number of chunks) of them,
so a fit that has stopped gaining costs a chunk, not all its steps; every held-out row is checked
when the fit ends. A fit that ran all its steps and raised held-out agreement where H' is not
settled by at least MIN_GAIN is followed by another.
Else the real H answers twice the share (up to all of it) at every difficulty not settled, and
H' is fitted again: those rows are answered by the real H in any case while H' is not trusted
there, so training on them costs no extra call. A difficulty is settled when H' is trusted there
and the rows it would be unsure of cost the real H no more than twice the share would.

H' then answers the trusted difficulties' other rows, taking its steps through the same tools
(pi and Mz, within the same budget). It stops a row before any step it is less confident in than
the threshold (`learned_unsure`). The real H answers those rows, the difficulties where H' is
not trusted, and any row where H' gives an answer the task would not accept from a person
(`Task.valid_answers`; `learned_malformed`). In the next batch a difficulty where H' was trusted
starts from `--oracle.min_fraction` again, any other from half the share it reached here.

Counts per batch (metrics): `real_h_calls`, `learned_calls`, `learned_agreement` (the lowest
held-out agreement, on the rows as confident as the threshold, over the difficulties H' is
trusted at: the bar it passed, so at least `--oracle.agreement`, not a measurement of it),
`learned_agreement_fresh` (the H' carried in from the last batch, on this batch's first held-out
rows where it is as confident as it was trusted from: questions it was neither fitted nor
checked on; None in the first batch; `learned_agreement_fresh_rows` of them), `learned_unsure`,
`learned_malformed`, `learned_fits` (and `learned_fit_steps`, the training steps of each member
they took), `learned_threshold_by_difficulty` (the confidence H' answers from, where it is trusted),
`real_fraction` (the real H's share of the batch) and `real_fraction_by_difficulty`. H' never
sees ground truth: it learns only from H's own transcripts. Built in and trusted, it runs in
this process. The network itself: `amplify.oracles.imitator`."""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from amplify import registry
from amplify.oracles.imitator import (_OPTIMIZER, ANSWER, ASK, FIT_ROWS, LOOKUP,  # noqa: F401
                                      MEMBERS, Transcripts, _act, _padded, _Recorder, _train)
from amplify.types import IDK

MIN_CHECK_ROWS = 20  # held-out rows of a difficulty needed to trust H' there
MIN_GAIN = 0.01  # a fit raising held-out agreement less than this: buy more of the real H
MAX_FITS = 32  # fits of H' per batch
FIT_CHUNK = 100  # a fit checks H' after each this many steps, and stops once it stops gaining
CHECK_ROWS = 1024  # held-out rows those checks read (the fit's end checks every one)
THRESHOLDS = (0.5, 0.9, 0.99, 0.999)  # the confidences H' may be trusted down to


@dataclasses.dataclass(frozen=True)
class LearnedSettings:
  min_fraction: float = 0.1  # the least share of a batch the real H answers
  agreement: float = 0.99  # H''s held-out agreement with the real H needed to answer the rest
  steps: int = 500  # training steps (minibatches of 128) each time H' is fitted
  width: int = 32

  def __post_init__(self):
    if not 0 < self.min_fraction <= 1:
      raise ValueError(f"--oracle.min_fraction={self.min_fraction}: a share in (0, 1].")
    if not 0 <= self.agreement <= 1:
      raise ValueError(f"--oracle.agreement={self.agreement}: a rate in [0, 1].")
    if self.steps < 1:
      raise ValueError(f"--oracle.steps={self.steps}: H' needs at least 1 training step a fit.")
    if self.width < 4 or self.width % 4:
      raise ValueError(f"--oracle.width={self.width}: a positive multiple of 4 (H''s 4 heads).")


def _thresholds(difficulty: np.ndarray, threshold: dict) -> np.ndarray:
  """float[B]: each row's threshold, from its difficulty's (inf where H' is not trusted)."""
  out = np.full(len(difficulty), np.inf)
  for d, tau in threshold.items():
    out[difficulty == d] = tau
  return out


def _answered(agrees: np.ndarray, confidence: np.ndarray) -> np.ndarray:
  """bool[B]: the rows H' answers as the real H did, sure enough to at its lowest threshold
  (counting the rows whose confidence crosses a higher one too kept every fit going: lexicon's
  round 1 trained 1,000 steps, against 300)."""
  return agrees & (confidence >= THRESHOLDS[0])


class LearnedOracle:
  """H' beside the real H; see the module docstring."""
  name = "learned"
  jittable = False
  whole_batch = True  # one batch per round: H' is fitted once per slice, not once per chunk
  hands_back = True  # tools.restart: a row H' gave up on gets the real H's whole budget

  def __init__(self, task, settings: LearnedSettings, human):
    self.task, self.settings, self.human = task, settings, human
    self.layout = Transcripts.of(task)
    # H', split and functional; params and opt_state have a leading committee axis
    self.graphdef = self.params = self.rest = self.opt_state = None
    self.data: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    self.share: dict[int, float] = {}  # per difficulty, the share a batch starts from
    self.trusted: dict[int, float] = {}  # the last batch's thresholds, where H' was trusted
    self.last_counts: dict = {}

  def _check(self, questions, logs, heldout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bool[B], float[B]): where H' agrees with the real H, and its confidence, on the
    held-out rows of `logs` (each the real H's answers, steps and rows answered); False and 0
    elsewhere."""
    agrees, confidence = np.zeros(len(heldout), bool), np.zeros(len(heldout))
    for h_answers, h_log, answered in logs:
      rows = np.flatnonzero(heldout & answered)
      if len(rows):
        agrees[rows], confidence[rows] = self._agrees(
            self.layout.examples(questions, h_answers, h_log, rows), len(rows))
    return agrees, confidence

  def _agrees(self, examples, n: int) -> tuple[np.ndarray, np.ndarray]:
    """bool[n]: H' takes every step of the real H's on each of n rows (given the results H's
    steps got), answer included. H' is deterministic and so are pi and Mz within a batch, so
    a row where it does answers as H did; this needs no call of pi or Mz. And float[n]: H''s
    least confidence over each row's steps up to its first that differs from H's (on a row it
    agrees on, the confidence it answers with; elsewhere no less than it would answer with)."""
    states, kinds, payloads, rows = examples
    widths = self.layout.widths
    kind, payload, confidence = (np.asarray(a)[:len(states)] for a in _act(
        self.graphdef, widths, self.params, self.rest, jnp.asarray(_padded(states))))
    used = np.arange(payloads.shape[1])[None, :] < np.asarray(widths)[kinds][:, None]
    step_ok = (kind == kinds) & np.all((payload == payloads) | ~used, axis=1)
    agrees = np.ones(n, bool)
    np.logical_and.at(agrees, rows, step_ok)
    # examples come step by step (all rows' first steps, then their second ...): a row's first
    # differing step is the last whose confidence counts
    before_wrong = np.ones(n, bool)
    row_confidence = np.ones(n)
    step = self.layout.step_index(states)
    for t in np.unique(step):
      at = step == t
      r = rows[at]
      live = before_wrong[r]
      np.minimum.at(row_confidence, r[live], confidence[at][live])
      before_wrong[r[~step_ok[at]]] = False
    return agrees, row_confidence

  # -- fitting and acting -----------------------------------------------------------------------
  def _fit(self, key: jax.Array, steps: int) -> None:
    states, kinds, payloads = (np.concatenate(parts) for parts in zip(*self.data))
    if self.params is None:
      members = [nnx.split(self.layout.network(self.settings.width, jax.random.fold_in(key, m)),
                           nnx.Param, ...) for m in range(MEMBERS)]
      self.graphdef, _, self.rest = members[0]
      self.params = jax.tree.map(lambda *p: jnp.stack(p), *(params for _, params, _ in members))
      self.opt_state = jax.vmap(_OPTIMIZER.init)(self.params)
    batches = jax.random.randint(key, (MEMBERS, steps, 128), 0, len(states))
    # the padding rows are never sampled
    self.params, self.opt_state, _ = _train(
        self.graphdef, _OPTIMIZER, self.layout.widths, self.params, self.rest, self.opt_state,
        *(jnp.asarray(_padded(a, FIT_ROWS)) for a in (states, kinds, payloads)), batches)

  @property
  def _chunks(self) -> int:
    return max(1, self.settings.steps // FIT_CHUNK)

  def _trust(self, rows_at: dict, taken: dict, heldout: np.ndarray, agrees: np.ndarray,
             confidence: np.ndarray):
    """Where H' is trusted, from its agreement with the real H on the held-out rows (bool[B])
    and its confidence there: ({difficulty: threshold}, {difficulty: share of its held-out rows
    that sure}, {difficulty: agreement}, the difficulties not settled where the real H has rows
    left). At each difficulty the lowest threshold at which it agrees on enough of the held-out
    rows it is that confident on leaves it the most rows."""
    threshold, coverage, checked = {}, {}, {}
    for d, rows in rows_at.items():
      held = rows[heldout[rows]]
      for tau in THRESHOLDS:
        sure = held[confidence[held] >= tau]
        if len(sure) >= MIN_CHECK_ROWS:
          checked[d] = float(agrees[sure].mean())
          if checked[d] >= self.settings.agreement:
            threshold[d], coverage[d] = tau, len(sure) / len(held)
            break
    # settled: the rows H' would leave to the real H there (those it is unsure of) cost no more
    # than asking the real H for twice the share would
    settled = {d for d in threshold if (1 - coverage[d]) * (len(rows_at[d]) - taken[d]) <= taken[d]}
    pending = {d for d in rows_at if d not in settled and taken[d] < len(rows_at[d])}
    return threshold, coverage, checked, pending

  def _imitate(self, questions: jax.Array, tools, rows: jax.Array,
               threshold: np.ndarray) -> tuple[jax.Array, np.ndarray]:
    """H' answers `rows` (bool[B]) through `tools`: one step per iteration, as array code. A row
    stops, unanswered, before a step H' is less confident in than the row's `threshold`
    float[B], or when it has taken as many steps as H ever may; returns the answers (IDK where
    none) and bool[B], the rows stopped so."""
    n, k, spec = questions.shape[0], self.layout.steps_max, self.task.spec
    q = np.asarray(questions)
    kinds = np.full((n, k), -1, np.int32)
    results = np.zeros((n, k, self.layout.result), np.int32)
    active = np.asarray(rows).copy()
    unsure = np.zeros(n, bool)
    answers = np.full((n, spec.answer_len), IDK, np.int32)
    for t in range(k + 1):
      # H' steps only the rows still active, padded to a power of two (few compiled shapes)
      at = np.flatnonzero(active)
      if not len(at):
        break
      index = np.zeros(1 << (len(at) - 1).bit_length(), np.int64)
      index[:len(at)] = at
      state = self.layout.state(q[index], kinds[index], results[index], np.full(len(index), t))
      step_kind, step_payload, confidence = (np.asarray(a)[:len(at)] for a in _act(
          self.graphdef, self.layout.widths, self.params, self.rest, jnp.asarray(state)))
      kind = np.full(n, -1, np.int32)
      payload = np.zeros((n, self.layout.payload), np.int32)
      kind[at], payload[at] = step_kind, step_payload
      doubt = np.zeros(n, bool)
      doubt[at] = confidence < threshold[at]
      unsure |= doubt
      active &= ~doubt
      kind[doubt] = -1
      done = active & ((kind == ANSWER) | (t == k))
      answers[done & (kind == ANSWER)] = payload[done & (kind == ANSWER), :spec.answer_len]
      unsure |= done & (kind != ANSWER)  # out of steps, unanswered: the real H's, not an IDK
      active &= ~done
      ask, look = active & (kind == ASK), active & (kind == LOOKUP)
      if t == k or not active.any():
        break
      if ask.any():
        reply = np.asarray(tools.ask(jnp.asarray(payload[:, :spec.question_len]),
                                     jnp.asarray(ask)))
        results[ask, t] = reply[ask]
      if look.any():
        value = np.asarray(tools.lookup(jnp.asarray(self.layout.key(payload), jnp.int32),
                                        jnp.asarray(look)))
        results[look, t, 0] = value[look]
      kinds[active, t] = kind[active]
    return jnp.asarray(answers), unsure

  def answer(self, questions: jax.Array, tools, key: jax.Array) -> jax.Array:
    n = questions.shape[0]
    difficulty = np.asarray(self.task.difficulty(questions))
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 0), n))
    rank = np.argsort(order)  # each row's place in that order
    # each difficulty's rows in one random order: the real H answers a prefix of them
    rows_at = {int(d): order[difficulty[order] == d] for d in np.unique(difficulty)}
    share = {d: self.share.get(d, self.settings.min_fraction) for d in rows_at}
    taken = dict.fromkeys(rows_at, 0)
    real, heldout = np.zeros(n, bool), np.zeros(n, bool)
    answers = np.full((n, self.task.spec.answer_len), IDK, np.int32)

    def ask_real(rows: np.ndarray, attempt: int):
      """The real H answers `rows` (bool[n]); returns its answers to every row (IDK elsewhere)
      and the steps it took."""
      real[rows] = True
      recorder = _Recorder(tools, jnp.asarray(rows))
      h = np.asarray(self.human.answer(questions, recorder, jax.random.fold_in(key, 1 + attempt)))
      answers[rows] = h[rows]
      return h, recorder.log

    pending, logs = set(rows_at), []
    audited = (None, 0)  # the H' carried in: its agreement on this batch's first held-out rows
    buy, fits, fit_steps = True, 0, 0
    # the H' in hand on every held-out row so far: whether it agrees with the real H, how surely
    agrees, confidence = np.zeros(n, bool), np.zeros(n)
    for attempt in range(MAX_FITS):
      if buy:  # the real H answers more rows, only where H' is not trusted
        new, train = np.zeros(n, bool), []
        for d in pending:
          upto = min(len(rows_at[d]), max(taken[d] + 1, math.ceil(share[d] * len(rows_at[d]))))
          rows = rows_at[d][taken[d]:upto]
          taken[d] = upto
          new[rows] = True
          split = len(rows) // 3  # a third of each slice checks H', the rest trains it
          heldout[rows[:split]] = True
          train.append(rows[split:])
        h, log = ask_real(new, attempt)
        logs.append((h, log, new))
        self.data.append(self.layout.examples(questions, h, log, np.concatenate(train))[:3])
        if self.params is not None:  # the rows checked so far keep their check
          fresh = heldout & new
          agrees[fresh], confidence[fresh] = (a[fresh] for a in self._check(
              questions, [(h, log, new)], fresh))
          if attempt == 0:  # the H' carried in, on questions it was neither fitted nor checked on
            audit = fresh & (confidence >= _thresholds(difficulty, self.trusted))
            audited = (float(agrees[audit].mean()) if audit.any() else None, int(audit.sum()))
      pending_before = pending
      # the H' in hand on every held-out row: the bar a fit must beat, and where it is settled
      # already (a batch whose difficulties all are needs no fit)
      before = (agrees, confidence) if self.params is not None else None
      threshold, coverage, checked, pending = (self._trust(rows_at, taken, heldout, *before)
                                               if before else ({}, {}, {}, pending))
      chunks = 0
      if before is None or pending:
        # a fit: chunks of steps while a chunk changes which rows H' answers as the real H did
        # on at least MIN_GAIN / (chunks a fit has) of a sample of the held-out rows
        held = np.flatnonzero(heldout)
        sample = np.zeros(n, bool)
        sample[held[np.argsort(rank[held])[:CHECK_ROWS]]] = True
        last = _answered(*before)[sample] if before else None
        while chunks < self._chunks:
          steps = math.ceil(self.settings.steps / self._chunks)
          self._fit(jax.random.fold_in(jax.random.fold_in(key, 100 + attempt), chunks), steps)
          chunks, fit_steps = chunks + 1, fit_steps + steps
          if chunks < self._chunks and sample.any():
            now = _answered(*self._check(questions, logs, sample))[sample]
            if last is not None and np.mean(now != last) < MIN_GAIN / self._chunks:
              break
            last = now
        fits += 1
        agrees, confidence = self._check(questions, logs, heldout)
        threshold, coverage, checked, pending = self._trust(rows_at, taken, heldout, agrees,
                                                            confidence)
      trusted = set(threshold)
      if not pending:
        break
      # fitting on while the fit raised H''s held-out agreement where it was not trusted costs
      # no real-H call: do that if it ran all its steps; else buy more of the real H
      where = heldout & np.isin(difficulty, list(pending_before))
      bar = before[0][where].sum() if before else 0
      gain = (agrees[where].sum() - bar) / max(int(where.sum()), 1)
      buy = gain < MIN_GAIN or chunks < self._chunks
      if buy:
        for d in pending:
          share[d] = min(1.0, 2 * share[d])
    self.trusted = {d: threshold[d] for d in trusted}  # also the next batch's check (audited)
    rest = ~real & np.isin(difficulty, list(trusted))
    untrusted = ~real & ~rest
    if untrusted.any():
      ask_real(untrusted, 99)
    malformed, unsure = np.zeros(n, bool), np.zeros(n, bool)
    if rest.any():
      imitated, unsure = self._imitate(questions, tools, jnp.asarray(rest),
                                       _thresholds(difficulty, self.trusted))
      answers[rest] = np.asarray(imitated)[rest]
      # a row H' stopped on, unsure of its next step, and an answer H' gave that the task would
      # not accept from a person (lexicon: counts that do not add up to the set's size, as when
      # H' adds a subanswer that H would have refused) go to the real H
      malformed = rest & ~unsure & ~np.asarray(self.task.valid_answers(questions,
                                                                       jnp.asarray(answers)))
      unsure &= rest
      if (malformed | unsure).any():
        rest &= ~(malformed | unsure)
        tools.restart(jnp.asarray(malformed | unsure))  # the real H's own budget for them
        ask_real(malformed | unsure, 98)
    # the next batch starts a difficulty H' is trusted at from the floor (the H' fitted here is
    # checked there again), and any other from half the share it reached here
    self.share = {d: self.settings.min_fraction if d in trusted
                  else max(self.settings.min_fraction, taken[d] / len(rows_at[d]) / 2)
                  for d in rows_at}
    self.last_counts = {"real_h_calls": int(real.sum()), "learned_calls": int(rest.sum()),
                        "learned_agreement": (min(checked[d] for d in trusted) if trusted
                                              else None),
                        "learned_agreement_fresh": audited[0],
                        "learned_agreement_fresh_rows": audited[1],
                        "real_fraction": round(float(real.mean()), 4),
                        "learned_malformed": int(malformed.sum()),
                        "learned_unsure": int(unsure.sum()), "learned_fits": fits,
                        "learned_fit_steps": fit_steps,
                        "learned_threshold_by_difficulty": {str(d): threshold[d]
                                                            for d in sorted(trusted)},
                        "real_fraction_by_difficulty": {
                            str(d): round(float(real[rows].mean()), 3)
                            for d, rows in sorted(rows_at.items())}}
    return jnp.asarray(answers)

  # the real H's model of the world, for learning the prior
  def log_prior(self, lookup, keys):
    return self.human.log_prior(lookup, keys)

  def log_likelihood(self, inputs, labels, lookup):
    return self.human.log_likelihood(inputs, labels, lookup)


PLUGIN = registry.OraclePlugin(LearnedOracle, LearnedSettings)
