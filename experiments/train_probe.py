"""A run of `amplify` with one piece of distillation's training replaced: a candidate engine
change measured before it is adopted (experiments/results/ceiling_curve/).

  python experiments/train_probe.py --probe=focus -- --preset=assignments \
    --config.train.focus=false --workdir=W
Seeds: amplify's own (`--seed`, default 0). Machine: any; the workdir's metrics name nothing of
it, so say it beside the figure.

Everything after `--` is amplify's command line. `--probe`:
  constant  AdamW's rate stays at its peak after the warm-up (the engine: cosine to a tenth).
  restart   each fit (each round) its own warm-up and cosine over its steps, the parameters
            warm-started (the engine: one schedule over every round's steps).
  focus     before each round's training, pi's agreement with H^A by difficulty on up to 4,096
            training rows; the rows are then drawn again, with replacement, each weighted
            max(FLOOR, 1 - its difficulty's agreement) (give it --config.train.focus=false,
            the engine's draw before this grew into `amplify.loop.phases.focus`); with
            --focus_uniform=u, a share u of the draw stays uniform over the rows; with
            --focus_kept=k, a row weighs k where pi's agreement at its difficulty is at least
            the stop bar (`amplify.loop.phases.stop_bar`, 0.975), else 1.
"""
from __future__ import annotations

import dataclasses
import functools
import sys

import jax
import numpy as np
import optax
from absl import flags
from flax import nnx

import amplify.learn.distill as distill
import amplify.loop.run as loop_run
from amplify.loop import phases
from amplify import main

_PROBE = flags.DEFINE_enum("probe", None, ["constant", "restart", "focus"],
                           "The piece of training replaced.")
_UNIFORM = flags.DEFINE_float("focus_uniform", 0.0,
                              "focus: the share of the draw that stays uniform over the rows.")
_KEPT = flags.DEFINE_float("focus_kept", None, "focus: the weight of a row at a difficulty pi "
                           "imitates H^A at (the stop bar), the others 1 (unset: 1 - agreement).")
FLOOR = 0.05  # focus: the least weight a difficulty's rows keep
_NOT_TWICE = ("--probe=focus draws in place of the engine's focused draw: add "
              "--config.train.focus=false after `--`.")


@functools.lru_cache(maxsize=None)
def _constant(learning_rate, warmup_steps, weight_decay, steps):
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, learning_rate, warmup_steps=min(warmup_steps, steps // 2), decay_steps=steps,
      end_value=learning_rate)
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(schedule, weight_decay=weight_decay))


_fit = distill.Distiller.fit


def _restarted_fit(self, data, steps, key, until=None, status=lambda text: None):
  self._tx = distill.make_optimizer(self._config, steps)  # pylint: disable=protected-access
  params = nnx.state(self.policy, nnx.Param)
  self._opt_state = distill.place_params(  # pylint: disable=protected-access
      jax.jit(self._tx.init)(params), self._config.shard_params)  # pylint: disable=protected-access
  self.schedule_steps = steps
  return _fit(self, data, steps, key, until, status)


_distil = loop_run.distil


def _focused_distil(run, state, r, parts):
  if run.config.train.focus:
    raise ValueError(_NOT_TWICE)
  if state.distiller is not None and run.plan[r].distil:
    # from the seed and the round (at seed 0 the draws the figures in results/ were made with)
    rows, rng = parts.train_set, np.random.default_rng(1000 + r + 1000 * run.config.seed)
    difficulty = np.asarray(run.task.difficulty(rows.inputs.questions))
    sample = rng.choice(len(rows), min(4096, len(rows)), replace=False)
    probe = rows.take(sample)
    agree = distill.agrees(distill.predict(state.distiller.policy, probe.inputs, run.view),
                           probe.labels)
    weights, by_difficulty = np.ones(len(rows)), {}
    for d in np.unique(difficulty):
      here = difficulty[sample] == d
      by_difficulty[int(d)] = float(agree[here].mean()) if here.any() else 0.0
      weights[difficulty == d] = (
          max(FLOOR, 1 - by_difficulty[int(d)]) if _KEPT.value is None else
          _KEPT.value if by_difficulty[int(d)] >= phases.stop_bar(run.config.label.competence)
          else 1.0)
    print(f"focus, round {r}: pi's agreement by difficulty "
          f"{ {d: round(a, 3) for d, a in by_difficulty.items()} }", flush=True)
    p = (1 - _UNIFORM.value) * weights / weights.sum() + _UNIFORM.value / len(rows)
    drawn = rng.choice(len(rows), len(rows), p=p)
    parts = dataclasses.replace(parts, train_set=rows.take(drawn))
  return _distil(run, state, r, parts)


def cli() -> None:
  if "--" not in sys.argv:
    sys.exit("error: amplify's flags go after `--` (python experiments/train_probe.py "
             "--probe=constant -- --preset=assignments --workdir=W).")
  cut = sys.argv.index("--")
  flags.FLAGS(sys.argv[:cut])
  if _PROBE.value is None:
    sys.exit("error: --probe: say which piece of training to replace: constant, restart or focus.")
  if _PROBE.value == "constant":
    distill._optimizer = _constant  # pylint: disable=protected-access
  elif _PROBE.value == "restart":
    distill.Distiller.fit = _restarted_fit
  else:
    loop_run.check = _focus_off(loop_run.check)
    loop_run.distil = _focused_distil
  sys.argv = [sys.argv[0], *sys.argv[cut + 1:]]
  main.cli()


def _focus_off(check):
  """amplify's checks before any work (`check`), and --probe=focus's: the engine's focused draw
  is off."""
  @functools.wraps(check)
  def checked(config, workdir):
    if config.train.focus:
      raise ValueError(_NOT_TWICE)
    return check(config, workdir)
  return checked


if __name__ == "__main__":
  cli()
