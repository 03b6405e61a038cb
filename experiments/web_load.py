"""The web oracle under load, and killed: simulated labellers answering a run's batches through its
pages on localhost.

  python experiments/web_load.py --labellers=50 --questions=1000 --kills=10
Seeds: the run's (--seeds, one; 0) and the kill times' (--kill_seed, 0). Machine: the project's
2-core CPU; the labellers (an asyncio loop of HTTP clients, httpx) share the cores with the run.

Load: a permutation_tiny run of two rounds with `--oracle=web`; `--labellers` clients sign in and
loop: next question, ask pi a subquestion (`sigma^1(x)`, x the question's element), answer. Every
request is timed from sending the form to the page it leads to (a post's redirect followed, as a
browser does); the figures are each round's percentiles (round 1: pi answers the asks), with the
labellers pausing `--think_s` on average before each action, then flat out (no pauses: the
throughput). Then the answer store is read: each question must have exactly one answer event and
one stored answer.

Kills: a one-round run of the same kind, labelled by the same clients, is killed (SIGKILL)
`--kills` times, each a random 0.5-4 s after its batch's first question was shown, and started
again by the same command each time; after each kill the store's answers are read, and at the
end every answer stored before a kill must still be there, unchanged, and no question may have
been answered twice.
Writes RESULTS/web_load/web_load.{json,md}.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from absl import flags
import httpx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from amplify.views.web import access  # noqa: E402  pylint: disable=g-import-not-at-top
import common  # noqa: E402  pylint: disable=g-import-not-at-top

_LABELLERS = flags.DEFINE_integer("labellers", 50, "Simulated labellers at once.", lower_bound=1)
_QUESTIONS = flags.DEFINE_integer("questions", 1000, "Questions per round.", lower_bound=1)
_KILLS = flags.DEFINE_integer("kills", 10, "Times the killed run is killed and started again.",
                             lower_bound=0)
_KILL_SEED = flags.DEFINE_integer("kill_seed", 0, "The kill times' seed.")
_THINK_S = flags.DEFINE_float("think_s", 1.0, "A labeller's mean pause before each action, s "
                              "(exponential; a person takes far longer); the load is also run "
                              "without pauses, for the throughput.", lower_bound=0.0)

QUESTION = re.compile(r'id="question">([^<]*)<')
FIELD = re.compile(r'name="(q|lease)" value="(\d+)"')
ROUND = re.compile(r"round (\d+) of")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Run:
  def __init__(self, folder: str, rounds: int):
    self.port, self.log = free_port(), os.path.join(folder, "run.log")
    self.db, self.workdir = os.path.join(folder, "answers.db"), os.path.join(folder, "w")
    self.command = [sys.executable, "-m", "amplify.main", "--preset=permutation_tiny",
                    f"--config.label.size={_QUESTIONS.value}", f"--rounds={rounds}",
                    "--nobaselines", f"--seed={common.seeds()[0]}", "--oracle=web",
                    f"--oracle.port={self.port}", f"--oracle_store={self.db}",
                    f"--workdir={self.workdir}"]
    self.starts, self.process = 0, None

  def start(self) -> None:
    with open(self.log, "a") as log:
      self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
    while open(self.log).read().count("invite labellers with") <= self.starts:
      if self.process.poll() is not None:
        raise RuntimeError(f"the run stopped: {open(self.log).read()[-2000:]}")
      time.sleep(0.1)
    self.starts += 1

  def url(self, path: str) -> str:
    return f"http://127.0.0.1:{self.port}{path}"


async def labeller(run: Run, who: str, token: str, latencies: list, stop, think_s: float,
                   opened: list) -> int:
  """Answers until `stop()`, pausing `think_s` on average before each action; returns how many
  answers the pages accepted. `opened` gets the time the first question was shown."""
  key, accepted = access.form_key(token), 0
  rng = random.Random(f"{_RUN_SEED.value} {who}")
  async with httpx.AsyncClient(follow_redirects=True, timeout=60) as client:
    async def page(method, path, **data):
      if think_s and method == "POST":
        await asyncio.sleep(rng.expovariate(1 / think_s))
      t0 = time.perf_counter()
      try:
        r = await client.request(method, run.url(path), data=data or None)
      except httpx.HTTPError:
        return None  # the run is down (killed, or ended)
      text = r.text
      m = ROUND.search(text)
      latencies.append((int(m.group(1)) if m else -1, time.perf_counter() - t0, r.status_code))
      return r
    while (await page("GET", f"/signin?token={token}")) is None and not stop():
      await asyncio.sleep(0.2)
    r = None
    while not stop():
      text = r.text if r is not None and r.status_code in (200, 409) else ""
      question = QUESTION.search(text)
      if question and not opened:
        opened.append(time.time())
      if not question:
        r = await page("POST", "/act", key=key, action="next")
        if r is None or not QUESTION.search(r.text):
          await asyncio.sleep(0.2)
        continue
      fields = dict(FIELD.findall(text))
      element = re.search(r"\((\w)\)", question.group(1)).group(1)
      r = await page("POST", "/act", key=key, action="ask", text=f"sigma^1({element})", **fields)
      if r is None or r.status_code != 200:
        continue
      r = await page("POST", "/act", key=key, action="answer", text=element, **fields)
      accepted += r is not None and r.status_code == 200
  return accepted


async def crowd(run: Run, tokens: dict, latencies: list, stop, think_s: float,
                opened: list | None = None) -> int:
  opened = [] if opened is None else opened
  return sum(await asyncio.gather(*(labeller(run, who, token, latencies, stop, think_s, opened)
                                    for who, token in tokens.items())))


def invite(run: Run) -> dict:
  return {f"p{i:02d}": access.invite(run.workdir, f"p{i:02d}") for i in range(_LABELLERS.value)}


def answer_events(db: str) -> tuple[dict, dict]:
  """{(question key, tools version): answer events} and {the same: stored answer} of the store
  (a question asked again with new tools, a new policy, is a new question for the store)."""
  con = sqlite3.connect(db)
  events: dict = {}
  for key in con.execute("SELECT question, version FROM events WHERE kind = 'answer'"):
    events[key] = events.get(key, 0) + 1
  stored = {(q, v): a for q, v, a in con.execute("SELECT question, version, answer FROM answers")}
  con.close()
  return events, stored


def load(folder: str, think_s: float) -> dict:
  os.makedirs(folder)
  run = Run(folder, rounds=2)
  tokens = invite(run)
  run.start()
  latencies: list = []
  t0 = time.time()
  accepted = asyncio.run(crowd(run, tokens, latencies, lambda: run.process.poll() is not None,
                               think_s))
  seconds = time.time() - t0
  events, stored = answer_events(run.db)
  by_round = {}
  for r in (0, 1):
    ms = np.asarray([s for rr, s, _ in latencies if rr == r]) * 1000
    by_round[r] = {"requests": len(ms), "p50_ms": float(np.percentile(ms, 50)),
                   "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}
  return {"think_s": think_s, "exit": run.process.returncode, "seconds": round(seconds, 1),
          "accepted": accepted,
          "answer_events": sum(events.values()), "questions_answered": len(events),
          "answered_twice": sum(n > 1 for n in events.values()), "stored": len(stored),
          "statuses": sorted({c for _, _, c in latencies}), "by_round": by_round}


def kills(folder: str) -> dict:
  os.makedirs(folder)
  run = Run(folder, rounds=1)
  tokens = invite(run)
  rng = random.Random(_KILL_SEED.value)
  snapshots, restarts = [], []
  for k in range(_KILLS.value + 1):
    run.start()
    before = answer_events(run.db)[1]
    delay, opened = rng.uniform(0.5, 4.0), []  # after the batch's first question is shown
    last = k == _KILLS.value
    ended = lambda: run.process.poll() is not None
    stop = ended if last else (lambda: ended() or bool(opened) and time.time() > opened[0] + delay)
    latencies: list = []
    asyncio.run(crowd(run, tokens, latencies, stop, _THINK_S.value, opened))
    if not last:
      run.process.send_signal(signal.SIGKILL)
      run.process.wait()
      snapshots.append(answer_events(run.db)[1])
    restarts.append({"stored_at_start": len(before), "stored_at_kill": len(snapshots[-1])
                     if not last else None, "requests": len(latencies)})
  events, final = answer_events(run.db)
  lost = [i for i, snap in enumerate(snapshots) if any(final.get(q) != a for q, a in snap.items())]
  return {"exit": run.process.wait(), "kills": len(snapshots), "restarts": restarts,
          "kills_losing_an_answer": lost, "answered_twice": sum(n > 1 for n in events.values()),
          "stored": len(final), "questions": _QUESTIONS.value}


def study(argv) -> None:
  del argv
  ignored = [f"--{name}" for name in ("preset", "config", "root") if flags.FLAGS[name].present]
  if ignored or common.run_flags() or len(common.seeds()) != 1:
    sys.exit(f"error: {' '.join(ignored + common.run_flags()) or '--seeds'}: this study runs "
             "permutation_tiny with the web oracle, one seed (--seeds=N); its own flags set "
             "the rest (--labellers, --questions, --kills; see --help)")
  logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
  folder = tempfile.mkdtemp(prefix="web_load_")
  paced = load(os.path.join(folder, "paced"), _THINK_S.value)
  flat_out = load(os.path.join(folder, "flat_out"), 0.0)
  b = kills(os.path.join(folder, "kills")) if _KILLS.value else None
  rows = []
  for a in (paced, flat_out):
    for r, v in a["by_round"].items():
      rows.append([f"{a['think_s']:g} s", f"round {r}" + (" (pi asked)" if r else " (no pi)"),
                   v["requests"], f"{v['p50_ms']:.0f}", f"**{v['p99_ms']:.0f}**",
                   f"{v['max_ms']:.0f}"])
  table = (f"{_LABELLERS.value} labellers, {_QUESTIONS.value} questions a round, two rounds; "
           "a request is a form post and the page it leads to.\n\n"
           + common.markdown(["pause before an action", "batch", "requests", "p50 ms", "p99 ms",
                              "max ms"], rows) + "\n\n"
           + "\n".join(f"- pauses of {a['think_s']:g} s: {a['seconds']} s in all, "
                       f"{a['accepted']} answers accepted, {a['answer_events']} answer events for "
                       f"{a['questions_answered']} questions (a question per tools version), "
                       f"{a['answered_twice']} answered twice, {a['stored']} stored; HTTP "
                       f"statuses {a['statuses']}; exit {a['exit']}." for a in (paced, flat_out)))
  if b is not None:
    table += (f"\n\nKilled (SIGKILL) {b['kills']} times mid-batch and started again: kills after "
              f"which a stored answer was lost or changed: {len(b['kills_losing_an_answer'])}; "
              f"questions answered twice: {b['answered_twice']}; stored at the end: "
              f"{b['stored']} of {b['questions']}; exit {b['exit']}.\n\n"
              + common.markdown(["start", "stored at start", "stored at kill"],
                                [[i + 1, r["stored_at_start"], r["stored_at_kill"] or "-"]
                                 for i, r in enumerate(b["restarts"])]))
  common.write_results("The web oracle: labellers at once, and killed", table, [],
                       folder="web_load", paced=paced, flat_out=flat_out, kills=b)


if __name__ == "__main__":
  common.main(study)
