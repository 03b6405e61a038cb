"""The web oracle in a real browser: three labellers (Debian's Chromium, driven by Playwright)
answer a tiny run's batch through the pages served by the run itself, with a typo re-prompted, an
undo, a lease that lapses, and the run killed (SIGKILL) and started again mid-batch; the run ends
with every question's answer stored once. `.ci/run` installs Chromium; without it this file is
skipped, saying so."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from amplify.views.web import access

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install "
                                "chromium; .ci/run does)")
LEASE_S = 6
QUESTIONS = 6
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Run:
  """The run with --oracle=web, started (and killed, and started again) as a researcher would."""

  def __init__(self, tmp_path, port):
    self.workdir, self.db = tmp_path / "w", tmp_path / "answers.db"
    self.command = [sys.executable, "-m", "amplify.main", "--preset=permutation_tiny",
                    f"--config.label.size={QUESTIONS}", "--rounds=1", "--nobaselines",
                    "--oracle=web", f"--oracle.port={port}", f"--oracle.lease_s={LEASE_S}",
                    f"--oracle_store={self.db}", f"--workdir={self.workdir}"]
    self.log = tmp_path / "run.log"

  def start(self):
    self.process = subprocess.Popen(self.command, stdout=open(self.log, "a"),
                                    stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": "."})
    deadline = time.time() + 240
    while self.log.read_text().count("invite labellers with") < self.starts + 1:
      assert self.process.poll() is None, self.log.read_text()
      assert time.time() < deadline, self.log.read_text()
      time.sleep(0.2)
    self.starts += 1

  starts = 0

  def kill(self):
    self.process.send_signal(signal.SIGKILL)
    self.process.wait()


def text(page, selector) -> str:
  return page.locator(selector).inner_text()


def wait_for_the_batch(page, seconds=120) -> None:
  """The pages are up when the run prints its address; its batch opens once pi is compiled."""
  deadline = time.time() + seconds
  while "No questions open now" in settled(page, page.content) and time.time() < deadline:
    time.sleep(0.5)
    settled(page, page.reload)


# While no question is shown, the label page refreshes itself every 5 s (label.html): a goto, or a
# read of the page, that meets that refresh is cut short (net::ERR_ABORTED, or "the page is
# navigating"); after a restart that happened in CI. Such a step is taken again.
CUT_SHORT = ("ERR_ABORTED", "is navigating", "Execution context was destroyed")


def settled(page, step):
  """step(), again (up to three times, the page loaded in between) where a refresh cut it short."""
  from playwright.sync_api import Error as PlaywrightError  # pylint: disable=g-import-not-at-top
  for attempt in range(3):
    try:
      return step()
    except PlaywrightError as e:
      if attempt == 2 or not any(s in str(e) for s in CUT_SHORT):
        raise
      page.wait_for_load_state()


def visit(page, url: str) -> None:
  settled(page, lambda: page.goto(url))


def answer(page, value: str) -> None:
  page.fill("#answer_text", value)
  page.click("#answer")


def test_three_labellers_label_a_batch_through_a_killed_and_restarted_run(tmp_path):
  port = free_port()
  run = Run(tmp_path, port)
  links = {who: f"http://127.0.0.1:{port}/signin?token="
                f"{access.invite(str(run.workdir), who)}" for who in ("ann", "bob", "cat")}
  run.start()
  try:
    label_through_the_pages(run, port, links)
  finally:
    if run.process.poll() is None:  # a failure above: the run is not left behind
      run.kill()
  assert run.process.wait(timeout=300) == 0, run.log.read_text()
  db = sqlite3.connect(run.db)
  assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == QUESTIONS
  # every question's last word is one answer: an undone one is answered again, none twice
  events = db.execute("SELECT question, kind FROM events WHERE kind IN ('answer', 'idk', "
                      "'undo') ORDER BY id").fetchall()
  net = {}
  for question, kind in events:
    net[question] = net.get(question, 0) + (-1 if kind == "undo" else 1)
  assert len(net) == QUESTIONS and set(net.values()) == {1}
  whos = {e[0] for e in db.execute("SELECT json_extract(payload, '$.who') FROM events WHERE "
                                   "kind = 'answer'")}
  assert whos == {"ann", "bob", "cat"}


def label_through_the_pages(run, port, links) -> None:
  """What the three labellers do in their browsers, until the run ends."""
  from playwright.sync_api import Error as PlaywrightError  # pylint: disable=g-import-not-at-top
  from playwright.sync_api import sync_playwright  # pylint: disable=g-import-not-at-top
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    pages = {who: browser.new_context().new_page() for who in links}
    for who, page in pages.items():
      visit(page, links[who])
      assert "signed in as" in settled(page, page.content)
    ann, bob, cat = pages["ann"], pages["bob"], pages["cat"]
    for page in pages.values():
      wait_for_the_batch(page)
    ann.click("#next")
    first = text(ann, "#question")
    assert "e.g. sigma^6(c)" in ann.get_attribute("#ask_text", "placeholder")  # the task's
    answer(ann, "zz")  # a typo: the task's reason, the same question still there
    assert "not an element" in text(ann, "#message")
    assert text(ann, "#question") == first
    budget = int(text(ann, "#lookups_left"))
    ann.fill("#lookup_text", first[first.index("(") + 1])
    ann.click("#lookup")
    assert "sigma(" in text(ann, "#history")
    assert int(text(ann, "#lookups_left")) == budget - 1
    answer(ann, "a")
    second = text(ann, "#question")  # the next question, leased to ann at once
    bob.click("#next")
    assert text(bob, "#question") not in (first, second)
    answer(bob, "b")
    ann.click("#undo")  # her answer to the first question taken back
    assert text(ann, "#question") == first
    answer(ann, "c")
    held = text(ann, "#question")
    time.sleep(LEASE_S + 1)  # ann's lease lapses; cat takes the question
    cat.click("#next")
    assert text(cat, "#question") == held
    answer(ann, "d")
    assert "went to another labeller" in text(ann, "#message")
    answer(cat, "d")
    answered = sqlite3.connect(run.db).execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert answered == 3  # ann's first (c), bob's, cat's
    run.kill()  # mid-batch: three questions answered, the rest open
    run.start()
    for who, page in pages.items():
      visit(page, f"http://127.0.0.1:{port}/label")
      wait_for_the_batch(page)
      assert "from the store: 3" in settled(page, page.content), who
    letters = iter("abcabcabc")
    while run.process.poll() is None:
      busy = False
      for page in pages.values():
        try:
          visit(page, f"http://127.0.0.1:{port}/label")
        except PlaywrightError:  # the run ended with the last answer: its server is gone
          run.process.wait(timeout=300)
          break
        if page.locator("#question").count():
          answer(page, next(letters))
          busy = True
        elif page.locator("#next").count():
          page.click("#next")
          busy = busy or page.locator("#question").count() > 0
      if not busy:
        time.sleep(0.5)
    browser.close()
