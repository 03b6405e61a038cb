"""Many people in H's place through their browsers (`--oracle=web`).

The run serves pages on `--oracle.host`:`--oracle.port` (localhost unless told otherwise) from
the first batch it labels until it ends. Each labeller signs in with the link the researcher made
for them (`amplify-web invite --workdir=DIR --who=NAME`), presses "next question" and answers
with the tools the terminal oracle has: ask pi, look up Mz, answer, IDK, skip, undo, note; the
budget left and every ask and look-up so far are on the page. Questions are leased one labeller
at a time (`--oracle.lease_s`) and return to the queue when a lease lapses
(`amplify.oracles.workspace`). Every event is committed to the answer store (`--oracle_store`,
which this oracle needs) before the next page is served: a killed run loses nothing, and the
same command resumes the batch with the answered questions taken from the store. The researcher's
link (`--role=researcher`) opens the batch's live progress and the run browser
(`amplify.views.web`).
"""
from __future__ import annotations

import dataclasses
import ipaddress
from typing import ClassVar

from amplify import registry
from amplify.oracles.question import OracleError


@dataclasses.dataclass(frozen=True)
class WebSettings:
  # how the pages are served, not who answers: a restart on another port reuses every answer
  serving: ClassVar[tuple[str, ...]] = ("host", "port", "lease_s")
  host: str = "127.0.0.1"  # where the pages are served: localhost unless told otherwise
  port: int = 8765
  lease_s: float = 300.0  # seconds a labeller holds a question without acting on it

  def __post_init__(self):
    if not 0 < self.port < 65536:
      raise ValueError(f"--oracle.port={self.port}: a TCP port, 1..65535.")
    if not self.lease_s > 0:
      raise ValueError(f"--oracle.lease_s={self.lease_s}: seconds, > 0.")
    try:
      ipaddress.ip_address(self.host)
    except ValueError:
      if self.host != "localhost":
        raise ValueError(f"--oracle.host={self.host!r}: an IP address to listen on (127.0.0.1, "
                         "the default, or 0.0.0.0 for every interface).") from None


class WebOracle:
  """The web oracle: a `Workspace` the run's thread serves, behind a server in this process."""
  name = "web"
  jittable = False
  shows_progress = True  # the pages, and a line on the run's terminal (`label_batch`)
  needs_store = "keeps every labeller's answers in the answer store"

  def __init__(self, settings: WebSettings):
    from amplify.oracles.workspace import Workspace  # pylint: disable=g-import-not-at-top
    self.settings = settings
    self.workspace = Workspace(settings.lease_s)
    self.server = None
    self._progress: dict = {}

  def begin(self, task, progress: dict) -> None:
    """A new batch (progress: round, rounds, questions, reused, workdir); the server starts with
    the first."""
    self._progress = {k: v for k, v in progress.items() if k != "workdir"}
    self.workspace.examples = dict(getattr(task, "examples", {}))  # shown in the fields
    if self.server is None:
      from amplify.views.web import server  # pylint: disable=g-import-not-at-top
      try:
        self.server = server.start(progress["workdir"], self.workspace, self.settings.host,
                                   self.settings.port)
      except OSError as e:
        raise OracleError(f"oracle 'web' could not serve on {self.settings.host}:"
                          f"{self.settings.port} ({e.strerror or e}): pass another "
                          "--oracle.port") from None
      print(f"labelling at {self.server.url}: invite labellers with `amplify-web invite "
            f"--workdir={progress['workdir']} --who=NAME`", flush=True)

  def label_batch(self, questions, make_tools, serve_asks, serve_lookups, finish, reopen,
                  on_event) -> int:
    """Serves the batch to the labellers until every question is answered, IDK or skipped;
    returns how many were skipped."""
    from amplify.views import progress  # pylint: disable=g-import-not-at-top
    where = f"round {self._progress['round']}, " if "round" in self._progress else ""
    at = f" at {self.server.url}" if self.server is not None else ""
    with progress.heartbeat(f"{where}labelling{at}", every=30) as status:
      return self.workspace.label(questions, make_tools, serve_asks, serve_lookups, finish,
                                  reopen, on_event, self._progress, status)


PLUGIN = registry.OraclePlugin(lambda task, settings, human: WebOracle(settings), WebSettings)
