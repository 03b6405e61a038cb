"""The web oracle's pages (`amplify.oracles.web`, `amplify.views.web`): labellers answering one
batch together through HTTP, the refusals, and the run browser. The batch is a real task's
questions labelled by `label_per_question` in a thread, as the run labels it; the pages are
served by Starlette's test client (the real server is in tests/test_web_run.py)."""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web pages' dependencies are not installed (the "
                    "device image has none of them; CI installs them with .[dev])")
from starlette.testclient import TestClient  # noqa: E402  pylint: disable=g-import-not-at-top

from amplify import configs as config_lib
from amplify.files.store import StoreError
from amplify.oracles.per_question import label_per_question
from amplify.oracles.question import Question
from amplify.oracles.web import WebOracle, WebSettings
from amplify.oracles.workspace import Refused
from amplify.tasks import make_task
from amplify.types import IDK
from amplify.views.web import access
from amplify.views.web.app import COOKIE, make_app


def key_of(html: str) -> str:
  return re.search(r'name="key" value="([0-9a-f]+)"', html).group(1)


def held(html: str) -> dict:
  """The question a labeller's page shows: its text, position and lease."""
  m = re.search(r'id="question">([^<]*)<', html)
  if m is None:
    return {}
  return {"text": m.group(1), "q": re.search(r'name="q" value="(\d+)"', html).group(1),
          "lease": re.search(r'name="lease" value="(\d+)"', html).group(1)}


def message(html: str) -> str:
  m = re.search(r'id="message">([^<]*)<', html)
  return m.group(1) if m else ""


class Labeller:
  """One person's browser session, as form posts."""

  def __init__(self, app, workdir, who, role="labeller"):
    self.client = TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=True)
    self.token = access.invite(str(workdir), who, role)
    r = self.client.get("/signin", params={"token": self.token})
    assert r.status_code == 200, r.text
    self.html = r.text

  def post(self, action, text=None, q=None, lease=None, **extra):
    page = held(self.html)
    data = {"key": access.form_key(self.token), "action": action, **extra}
    if action not in ("next", "undo"):
      data |= {"q": page["q"] if q is None else q, "lease": page["lease"] if lease is None
               else lease}
    if text is not None:
      data["text"] = text
    r = self.client.post("/act", data=data)
    if r.status_code == 200:
      self.html = r.text
    return r


@pytest.fixture(scope="module")
def task():
  return make_task(config_lib.get_config("permutation_tiny"))[0]


def questions_of(task, n: int, max_asks=2, max_lookups=2) -> list[Question]:
  q = np.asarray(task.deployment_questions(jax.random.key(0), n).questions)
  d = np.asarray(task.difficulty(q))
  return [Question(task.render_question(q[i]), q[i], int(d[i]), i, max_asks, max_lookups)
          for i in range(n)]


class Batch:
  """A batch labelled in a thread by the web oracle, its events recorded as the store gets them
  (`batches` > 1: that many batches of n in turn, through the one oracle, as a run's rounds)."""

  def __init__(self, task, n: int, lease_s=60.0, batches=1):
    self.task, self.oracle, self.n = task, WebOracle(WebSettings(lease_s=lease_s)), n
    self.questions, self.events, self.asked = questions_of(task, n * batches), [], []
    answer_len = task.spec.answer_len
    # pi's calls wait while `gate` is cleared (each sets `serving` first): a test holds the
    # run's thread in one wave while the next wave's operations queue up
    self.gate, self.serving = threading.Event(), threading.Event()
    self.gate.set()

    def serve_asks(rows, q):
      self.serving.set()
      self.gate.wait(30)
      self.asked.append(len(rows))
      return np.full((len(rows), answer_len), IDK, np.int32)

    self.thread = threading.Thread(target=self._run, args=(serve_asks,), daemon=True)
    self.thread.start()
    deadline = time.time() + 30
    while not self.oracle.workspace.is_open:
      assert time.time() < deadline and self.thread.is_alive()
      time.sleep(0.01)

  def _run(self, serve_asks):
    for start in range(0, len(self.questions), self.n):
      self.out = label_per_question(self.oracle, self.task, self.questions[start:start + self.n],
                                    serve_asks, lambda rows, keys: np.asarray(keys) % 4,
                                    lambda *event: self.events.append(event))

  def kinds(self, kind):
    return [e for e in self.events if e[1] == kind]

  def done(self):
    self.thread.join(timeout=30)
    assert not self.thread.is_alive()
    return self.out


def first_element(text: str) -> str:
  return re.search(r"\((\w)\)", text).group(1)


def test_two_labellers_answer_a_batch_together(task, tmp_path):
  batch = Batch(task, 4)
  app = make_app(str(tmp_path / "w"), batch.oracle.workspace)
  ann, bob = Labeller(app, tmp_path / "w", "ann"), Labeller(app, tmp_path / "w", "bob")
  assert ann.post("next").status_code == 200 and bob.post("next").status_code == 200
  a, b = held(ann.html), held(bob.html)
  assert a["q"] != b["q"]  # one question, one labeller
  r = ann.post("answer", "zz")  # a typo: the task's reason, the question still held
  assert r.status_code == 400 and "not an element" in message(r.text)
  assert held(r.text)["q"] == a["q"]
  ann.html = r.text
  r = ann.post("lookup", first_element(a["text"]))
  assert r.status_code == 200 and "sigma(" in ann.html and ">1</b> look-ups" in ann.html
  r = ann.post("ask", "sigma^2(a)")
  assert r.status_code == 200 and ">1</b> asks" in ann.html
  assert ann.post("answer", "a").status_code == 200  # and the next question is leased to ann
  nxt = held(ann.html)
  assert nxt and nxt["q"] not in (a["q"], b["q"])
  assert ann.post("undo").status_code == 200  # ann's answer taken back, the question hers again
  assert held(ann.html)["q"] == a["q"]
  assert ann.post("answer", "b").status_code == 200
  assert bob.post("idk").status_code == 200
  assert bob.post("answer", "c").status_code == 200  # the fourth, or ann's, whichever bob holds
  for person in (ann, bob):
    while held(person.html):
      assert person.post("answer", "d").status_code == 200
  out = batch.done()
  assert out.answered.sum() == 3 and out.skipped == 0  # one IDK
  answers = batch.kinds("answer")
  assert len(answers) == 4 and len(batch.kinds("undo")) == 1 and len(batch.kinds("idk")) == 1
  assert {e[2]["who"] for e in answers} == {"ann", "bob"}
  assert batch.kinds("lookup")[0][2]["who"] == "ann"
  # the undone answer is the only one given twice; every question's last word is stored once
  last = {e[0]: e[1] for e in batch.events if e[1] in ("answer", "idk", "undo")}
  assert sorted(last) == [0, 1, 2, 3] and set(last.values()) <= {"answer", "idk"}


def test_a_lapsed_lease_goes_to_the_next_labeller_and_the_first_answer_is_kept(task, tmp_path):
  batch = Batch(task, 2, lease_s=0.3)
  app = make_app(str(tmp_path / "w"), batch.oracle.workspace)
  ann, bob = Labeller(app, tmp_path / "w", "ann"), Labeller(app, tmp_path / "w", "bob")
  ann.post("next")
  stale = dict(held(ann.html))
  time.sleep(0.8)
  bob.post("next")
  assert held(bob.html)["q"] == stale["q"]  # her lease lapsed: it is bob's now
  r = ann.post("answer", "a", q=stale["q"], lease=stale["lease"])
  assert r.status_code == 409 and "went to another labeller" in message(r.text)
  mine = dict(held(bob.html))
  assert bob.post("answer", "b").status_code == 200
  r = bob.post("answer", "c", q=mine["q"], lease=mine["lease"])  # the same form again
  assert r.status_code == 409 and "already answered (by you)" in message(r.text)
  assert bob.post("answer", "d").status_code == 200
  out = batch.done()
  assert [e[2]["who"] for e in batch.kinds("answer")] == ["bob", "bob"]
  assert task.render_answer(out.answers[int(stale["q"])]) == "b"


def test_an_answer_on_a_lapsed_lease_nobody_took_counts_the_time_since_it_was_taken(task):
  batch = Batch(task, 1, lease_s=0.3)
  ws = batch.oracle.workspace
  v = ws.submit("next", "ann").result(10)["question"]
  time.sleep(0.8)  # lapsed; nobody took it
  ws.submit("answer", "ann", v["position"], v["lease"], "a").result(10)
  batch.done()
  assert batch.kinds("answer")[0][2]["seconds"] >= 0.7


def test_a_skipped_question_is_counted_apart_from_the_answers(task, tmp_path):
  batch = Batch(task, 2)
  app = make_app(str(tmp_path / "w"), batch.oracle.workspace)
  ann = Labeller(app, tmp_path / "w", "ann")
  ann.post("next")
  assert ann.post("skip").status_code == 200
  assert ann.post("answer", "a").status_code == 200
  out = batch.done()
  assert out.skipped == 1 and out.answered.sum() == 1 and len(batch.kinds("skip")) == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the run's
def test_an_answer_the_store_fails_to_keep_stops_the_run_and_is_no_refused_form(task, tmp_path):
  """A store that cannot be written is the run's failure, not the labeller's input: the run's
  thread ends with it (the run's one line), and the page is not told "not accepted"."""
  batch = Batch(task, 2)

  class Full(list):
    def append(self, event):
      if event[1] in ("answer", "idk"):
        raise StoreError("--oracle_store=s.db cannot be read or written (disk full)")
      super().append(event)

  batch.events = Full()
  app = make_app(str(tmp_path / "w"), batch.oracle.workspace)
  ann = Labeller(app, tmp_path / "w", "ann")
  ann.post("next")
  with pytest.raises(StoreError):  # the test client raises what the server would answer 500 to
    ann.post("answer", "a")
  batch.thread.join(timeout=30)
  assert not batch.thread.is_alive() and not hasattr(batch, "out")


def test_every_refusal_changes_nothing(task, tmp_path):
  batch = Batch(task, 3)
  workdir = tmp_path / "w"
  app = make_app(str(workdir), batch.oracle.workspace)
  ann, bob = Labeller(app, workdir, "ann"), Labeller(app, workdir, "bob")
  ann.post("next")
  bob.post("next")
  a, b = held(ann.html), held(bob.html)
  before = len(batch.events)
  anon = TestClient(app, base_url="http://127.0.0.1:8765")
  assert anon.get("/label").status_code == 401  # no token
  assert anon.post("/act", data={"action": "next"}).status_code == 401
  anon.cookies.set(COOKIE, "not-a-token")
  assert anon.get("/label").status_code == 403  # a wrong token
  assert anon.get("/signin", params={"token": "nope"}).status_code == 403
  # another labeller's question
  r = ann.post("answer", "a", q=b["q"], lease=b["lease"])
  assert r.status_code == 403 and "not leased to you" in r.text
  # forged form posts: no form key, another token's key, a page of another site
  forged = {"action": "answer", "q": a["q"], "lease": a["lease"], "text": "a"}
  assert ann.client.post("/act", data=forged).status_code == 403
  assert ann.client.post("/act", data=forged | {"key": key_of(bob.html)}).status_code == 403
  assert ann.client.post("/act", data=forged | {"key": key_of(ann.html)},
                         headers={"origin": "http://evil.example"}).status_code == 403
  # over-long, binary and file answers, a question that is not there, an action that is not
  assert ann.post("answer", "a" * 501).status_code == 400
  assert ann.post("answer", "a\x00\x01").status_code == 400
  r = ann.client.post("/act", data={"key": key_of(ann.html), "action": "answer", "q": a["q"],
                                    "lease": a["lease"]}, files={"text": ("x.bin", b"\xff\xfe")})
  assert r.status_code == 400
  assert ann.post("answer", "a", q=99).status_code == 404
  assert ann.post("sudo", q=a["q"]).status_code == 400
  # a labeller is not a researcher, nor a researcher a labeller
  assert ann.client.get("/runs").status_code == 403
  assert ann.client.get("/progress").status_code == 403
  boss = Labeller(app, workdir, "boss", "researcher")
  assert boss.client.get("/label").status_code == 403
  assert len(batch.events) == before  # nothing was recorded
  assert held(ann.html) == a and "answered" not in str(batch.kinds("answer"))
  for person in (ann, bob):
    person.post("answer", "a")
    while held(person.html):
      person.post("answer", "a")
  assert batch.done().answered.sum() == 3


def test_a_form_from_an_earlier_batch_is_refused_where_its_question_stood(task):
  """Positions restart at 0 in every batch: ann's page from round 0's batch, sent in round 1's
  where she holds position 0 again (a second tab), is refused, not stored as her answer to the
  question standing there now."""
  batch = Batch(task, 1, batches=2)
  ws = batch.oracle.workspace
  stale = ws.submit("next", "ann").result(10)["question"]
  ws.submit("answer", "ann", stale["position"], stale["lease"], "a").result(10)
  deadline = time.time() + 30
  while not (ws.is_open and ws.slots[0].question is batch.questions[1]):
    assert time.time() < deadline
    time.sleep(0.01)
  now = ws.submit("next", "ann").result(10)["question"]
  assert now["position"] == stale["position"] and now["text"] != stale["text"]
  with pytest.raises(Refused, match="from an older page") as refused:
    ws.submit("answer", "ann", stale["position"], stale["lease"], "b").result(10)
  assert refused.value.status == 409 and len(batch.kinds("answer")) == 1
  ws.submit("answer", "ann", now["position"], now["lease"], "c").result(10)
  batch.done()
  assert [task.render_answer(e[2]["answer"]) for e in batch.kinds("answer")] == ["a", "c"]


def test_asks_that_come_together_go_to_pi_in_one_call(task, tmp_path):
  batch = Batch(task, 8)
  ws = batch.oracle.workspace
  futures = [ws.submit("next", f"p{i}") for i in range(8)]
  views = [f.result(timeout=10) for f in futures]
  before = len(batch.asked)
  asks = [ws.submit("ask", f"p{i}", v["question"]["position"], v["question"]["lease"],
                    "sigma^2(a)") for i, v in enumerate(views)]
  assert all(f.result(timeout=10).text for f in asks)
  assert sum(batch.asked[before:]) == 8 and len(batch.asked) - before < 8  # batched
  for i, v in enumerate(views):
    ws.submit("idk", f"p{i}", v["question"]["position"], v["question"]["lease"]).result(10)
  batch.done()


def test_an_answer_sent_with_its_question_s_ask_waits_for_the_ask(task, tmp_path):
  """An ask and an answer to one question in one wave: the answer is refused (409) while the ask
  waits for pi, so the answer kept is given after it, its transcript holding the ask (it was
  kept without it, and the ask recorded on the answered question after)."""
  batch = Batch(task, 2)
  ws = batch.oracle.workspace
  a, b = (ws.submit("next", who).result(10)["question"] for who in ("ann", "bob"))
  batch.gate.clear()
  batch.serving.clear()
  busy = ws.submit("ask", "bob", b["position"], b["lease"], "sigma^1(a)")
  assert batch.serving.wait(10)  # the run's thread is in bob's wave; ann's ops queue up
  ask = ws.submit("ask", "ann", a["position"], a["lease"], "sigma^1(a)")
  answer = ws.submit("answer", "ann", a["position"], a["lease"], "a")
  batch.gate.set()
  assert busy.result(10).text and ask.result(10).text
  with pytest.raises(Refused) as refused:
    answer.result(10)
  assert refused.value.status == 409
  ws.submit("answer", "ann", a["position"], a["lease"], "a").result(10)
  ws.submit("idk", "bob", b["position"], b["lease"]).result(10)
  out = batch.done()
  assert out.answered.sum() == 1 and len(out.transcripts[a["position"]].asks) == 1


def test_asks_sent_at_once_never_pass_the_budget(task, tmp_path):
  batch = Batch(task, 1)  # 2 asks a question
  ws = batch.oracle.workspace
  v = ws.submit("next", "p").result(10)["question"]
  futures = [ws.submit("ask", "p", v["position"], v["lease"], "sigma^2(a)") for _ in range(5)]
  replies = []
  for f in futures:
    try:
      replies.append(f.result(10).text)
    except Refused as e:  # a step of this question is still being answered
      assert e.status == 409
  assert len(batch.kinds("ask")) <= 2 and replies  # never more asks than the budget
  for _ in range(3):  # then one at a time: the budget alone refuses those past it
    replies.append(ws.submit("ask", "p", v["position"], v["lease"], "sigma^2(a)").result(10).text)
  assert len(batch.kinds("ask")) == 2  # exactly the budget, however the asks came
  assert len(replies) - replies.count("IDK (no asks left)") == 2, replies
  with pytest.raises(Refused):
    ws.submit("_finished", "p").result(10)  # only the pages' operations run
  ws.submit("idk", "p", v["position"], v["lease"]).result(10)
  batch.done()


def test_the_run_browser_opens_only_the_runs_it_lists(tmp_path):
  root = tmp_path / "runs"
  (root / "a").mkdir(parents=True)
  (root / "a" / "config.json").write_text("{}")
  (root / "secret").mkdir()
  (root / "secret" / "x.txt").write_text("no")
  app = make_app(str(root / "a"))
  boss = Labeller(app, root / "a", "boss", "researcher")
  r = boss.client.get("/runs")
  assert r.status_code == 200 and ">a</a>" in r.text and "secret" not in r.text
  assert boss.client.get("/runs/a").status_code == 200
  for path in ("/runs/secret", "/runs/%2E%2E", "/runs/a/plots/..%2F..%2Fsecret%2Fx.txt",
               "/runs/%2E%2E/plots/x.txt", "/runs/a/plots/x.png", "/runs/secret/tree?round=0&row=0",
               "/compare.png?run=secret"):
    assert boss.client.get(path).status_code == 404, path
  assert boss.client.get("/compare", params={"run": ["a", "../secret"]}).status_code == 404
  r = boss.client.get("/compare")  # the button, no run ticked
  assert r.status_code == 400 and "tick at least one run" in r.text
  r = boss.client.get("/runs/a/tree", params={"round": "0", "row": "0"})
  assert r.status_code == 400  # no transcripts: said, not a traceback
  r = boss.client.get("/label")
  assert r.status_code == 403  # a researcher's token does not label


def test_fifty_labellers_on_localhost_answer_a_batch_once_each(task, tmp_path):
  """The real server on a free port; 50 HTTP clients (bounded: 60 s) answer 200 questions."""
  import asyncio  # pylint: disable=g-import-not-at-top
  import httpx  # pylint: disable=g-import-not-at-top
  from amplify.views.web import server  # pylint: disable=g-import-not-at-top
  batch = Batch(task, 200)
  running = server.start(str(tmp_path / "w"), batch.oracle.workspace, "127.0.0.1", 0)
  tokens = [access.invite(str(tmp_path / "w"), f"p{i}") for i in range(50)]
  deadline = time.time() + 60

  async def labeller(token):
    key, accepted = access.form_key(token), 0
    async with httpx.AsyncClient(base_url=running.url, follow_redirects=True, timeout=30) as c:
      r = await c.get("/signin", params={"token": token})
      while batch.thread.is_alive() and time.time() < deadline:
        page = held(r.text)
        if not page:
          r = await c.post("/act", data={"key": key, "action": "next"})
          if not held(r.text):
            await asyncio.sleep(0.05)
          continue
        r = await c.post("/act", data={"key": key, "action": "answer", "text": "a", **{
            k: page[k] for k in ("q", "lease")}})
        accepted += r.status_code == 200
    return accepted

  async def crowd():
    return await asyncio.gather(*(labeller(t) for t in tokens))

  try:
    accepted = asyncio.run(crowd())
    out = batch.done()
  finally:
    running.stop()
  assert out.answered.all() and sum(accepted) == 200
  per_question = [e[0] for e in batch.kinds("answer")]
  assert sorted(per_question) == list(range(200))  # every answer stored once
  assert len({e[2]["who"] for e in batch.kinds("answer")}) > 1


def test_a_run_served_on_another_port_is_the_same_run(tmp_path):
  """The store knows the labellers' answers by oracle, not port, and the workdir resumes."""
  from amplify.files.jsonio import write_json  # pylint: disable=g-import-not-at-top
  from amplify.loop.workdir import check_workdir  # pylint: disable=g-import-not-at-top
  from amplify.oracles.make import identity  # pylint: disable=g-import-not-at-top
  a, b = (config_lib.get_config("permutation_tiny", oracle="web", **{"oracle.port": port})
          for port in (8765, 9000))
  assert identity(a) == identity(b) == "web"
  write_json(str(tmp_path / "config.json"), config_lib.to_dict(a))
  check_workdir(b, str(tmp_path))  # no refusal: only where it is served changed
  with pytest.raises(ValueError, match="different config"):
    check_workdir(config_lib.get_config("permutation_tiny", oracle="web", seed=1),
                  str(tmp_path))



def test_a_researcher_browses_a_finished_run(finished_run, tmp_path):
  """The table, a plot and a question's tree, the tree drawn as `amplify-report --tree` draws it
  (in a process of its own: the server's never rebuilds a task's truth)."""
  import helpers  # pylint: disable=g-import-not-at-top
  from amplify.views import transcript_tree  # pylint: disable=g-import-not-at-top
  _, workdir, _ = finished_run(helpers.PERMUTATION_ROUNDS)
  root = tmp_path / "runs"
  helpers.copy_run(workdir, root / "a")
  app = make_app(str(root / "a"))
  boss = Labeller(app, root / "a", "boss", "researcher")
  r = boss.client.get("/runs/a")
  assert r.status_code == 200 and "policy acc" in r.text
  plot = re.search(r'src="(/runs/a/plots/[^"]+\.png)"', r.text).group(1)
  r = boss.client.get(plot)
  assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
  r = boss.client.get("/runs/a/tree", params={"round": "0", "row": "1"})
  assert r.status_code == 200
  expected = transcript_tree.render(str(root / "a"), "0:1")
  assert re.search(r'<pre id="tree">(.*?)</pre>', r.text, re.S).group(1).replace(
      "&gt;", ">").replace("&#39;", "'").strip() == expected.strip()
  assert boss.client.get("/runs/a/tree", params={"round": "9", "row": "0"}).status_code == 400


def test_a_port_in_use_is_one_line_naming_the_flag(task, tmp_path):
  import socket  # pylint: disable=g-import-not-at-top
  from amplify.oracles.question import OracleError  # pylint: disable=g-import-not-at-top
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    oracle = WebOracle(WebSettings(port=busy.getsockname()[1]))
    with pytest.raises(OracleError, match="pass another --oracle.port"):
      oracle.begin(task, {"workdir": str(tmp_path)})
    served = subprocess.run([sys.executable, "-m", "amplify.views.web.cli", "serve",
                             f"--workdir={tmp_path}", f"--port={busy.getsockname()[1]}"],
                            capture_output=True, text=True, timeout=120)
  assert served.returncode == 2 and served.stderr.count("\n") == 1
  assert served.stderr.startswith("error: cannot serve on --host=127.0.0.1 --port=")
  assert "pass another --host or --port" in served.stderr
