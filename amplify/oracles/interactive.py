"""A person at the terminal in H's place (`--oracle=interactive`).

Each question is shown with a header (round, progress, answered / IDK, answers from the store),
the task's rendering of the question, the budget left and every ask and look-up made for it so
far, each with a short id (a1, l1, ...). Commands, one letter or a word:

  a / ask SUBQUESTION   ask pi now (e.g. `a sigma^6(c)`, `a e17 e5`)
  l / lookup KEY        read one entry of z* through Mz (e.g. `l c`, `l e17`, `l 3 red`)
  = / answer ANSWER     answer the question (parsed by the task, e.g. `= e`, `= c0=1 c2=1`)
  x / idk               I don't know
  s / skip              skip the rest of this batch (IDK this round; not stored)
  u / undo              reopen the previous question
  n / note TEXT         a note kept with this question's transcript
  ? / help              this list
  q / quit              stop; every answer given is kept (so are Ctrl-C and end of input)

A typo, or input the task cannot parse, re-prompts with the reason. The screen is drawn with
rich (declared in pyproject.toml, loaded only with this oracle); nothing here writes escape
codes by hand.
"""
from __future__ import annotations

import dataclasses

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from amplify import registry
from amplify.files.jsonio import WorkdirError
from amplify.oracles.base import QUIT, SKIP, UNDO, Question

COMMANDS = {"a": "ask", "l": "lookup", "=": "answer", "x": "idk", "s": "skip", "u": "undo",
            "n": "note", "?": "help", "q": "quit"}
ALIASES = {**{word: word for word in COMMANDS.values()}, **COMMANDS}
HELP = __doc__.split("\n\n")[2]


@dataclasses.dataclass(frozen=True)
class InteractiveSettings:
  who: str = "person"  # the answerer's name: answers in the store are kept per person


class Interactive:
  """The interactive oracle: one question at a time, in the calling thread. Built in and
  trusted (a person, this terminal): it runs in this process, not in a worker."""
  name = "interactive"
  in_flight = 1
  in_process = True
  person = True  # answered in this thread, a question at a time: may skip, undo and quit
  jittable = False
  shows_progress = True  # its screen's header
  needs_store = "keeps a person's every answer in the answer store"

  def __init__(self, settings: InteractiveSettings, console: Console | None = None):
    self.settings = settings
    self.console = console or Console(highlight=False)
    self._progress: dict = {}
    self._outcome: dict[int, str] = {}  # question index -> "answered" / "idk"
    self._order: dict[int, int] = {}  # question index -> its number on screen
    self._examples: dict[str, str] = {}  # the task's (`amplify.types.Text.examples`)

  def begin(self, task, progress: dict) -> None:
    """A new batch: what the header shows (round, rounds, questions, and reused: the questions
    answered from the store)."""
    self._progress, self._outcome, self._order = dict(progress), {}, {}
    self._examples = dict(getattr(task, "examples", {}))

  def _header(self, question: Question) -> str:
    p = self._progress
    self._order.setdefault(question.index, len(self._order) + 1)
    answered = sum(v == "answered" for v in self._outcome.values())
    idk = sum(v == "idk" for v in self._outcome.values())
    # rounds from 0, as metrics.jsonl numbers them
    where = (f"round {p['round']} of {p['rounds']}  " if "round" in p else "")
    return (f"{where}question {self._order[question.index]} of {p.get('questions', '?')}  "
            f"answered {answered}  IDK {idk}  (from the store: {p.get('reused', 0)})")

  def _draw(self, question: Question, tools, history: list, message: str) -> None:
    c = self.console
    c.clear()
    c.rule(Text(self._header(question)))
    c.print(Panel(Text(question.text), title="question", title_align="left"))
    c.print(f"budget left: {tools.asks_left()} asks, {tools.lookups_left()} look-ups  "
            + escape(f"[{self.settings.who}]"))
    if history:
      table = Table(show_header=False, box=None, padding=(0, 1))
      for row in history:
        table.add_row(*(Text(cell) for cell in row))
      c.print(table)
    if message:
      c.print(message)

  def answer_one(self, question: Question, tools):
    self._outcome.pop(question.index, None)  # reopened (undo): not answered while it is open
    try:
      return self._converse(question, tools)
    except KeyboardInterrupt:  # Ctrl-C while the screen is drawn or a tool runs
      self.console.print("\nstopping: every answer given so far is saved.")
      return QUIT

  def _converse(self, question: Question, tools):
    history: list[tuple[str, str, str]] = []
    message = "type ? for help"
    while True:
      self._draw(question, tools, history, message)
      try:
        line = self.console.input("> ").strip()
      except (EOFError, KeyboardInterrupt):
        self.console.print("\nstopping: every answer given so far is saved.")
        return QUIT
      except UnicodeDecodeError:  # a byte the terminal's encoding cannot read
        message = "[red]that line is not text this terminal can read[/red]; type it again"
        continue
      word, _, rest = line.partition(" ")
      command = ALIASES.get(word.lower()) if word else None
      if line[:1] == "=" and word != "=":  # "=e": the answer glued to its command
        command, rest = "answer", line[1:]
      rest = rest.strip()
      if command is None:
        message = (f"[red]{escape(repr(word))} is not a command[/red]; type ? for help" if word else
                   "type a command (? for help)")
        continue
      if command in ("ask", "lookup", "answer", "note") and not rest:
        message = f"[red]{command} needs an argument[/red] (e.g. {self._example(command)})"
        continue
      try:
        if command == "ask":
          reply = tools.ask(rest)
          history.append((f"a{sum(h[0][0] == 'a' for h in history) + 1}", rest, reply.text))
          message = ""
        elif command == "lookup":
          reply = tools.lookup(rest)
          history.append((f"l{sum(h[0][0] == 'l' for h in history) + 1}", rest, reply.text))
          message = ""
        elif command == "answer":
          answer = tools.parse_answer(rest)
          self._outcome[question.index] = "answered"
          return answer
        elif command == "idk":
          self._outcome[question.index] = "idk"
          return None
        elif command == "skip":
          return SKIP
        elif command == "undo":
          if self._outcome:  # a question answered in this session (the store's are not)
            return UNDO
          message = "nothing to undo: no question answered in this session"
        elif command == "note":
          tools.note(rest)
          history.append((f"n{sum(h[0][0] == 'n' for h in history) + 1}", "note", rest))
          message = ""
        elif command == "help":
          message = escape(HELP)
        elif command == "quit":
          return QUIT
      except WorkdirError:  # the answer store failed: the run's error, not the person's input
        raise
      except ValueError as e:
        message = f"[red]not accepted:[/red] {escape(str(e))}"

  def _example(self, command: str) -> str:
    """The command with the task's example argument (`Text.examples`), else a placeholder."""
    letter = {"ask": "a", "lookup": "l", "answer": "=", "note": "n"}[command]
    typed = self._examples.get(command, "unsure" if command == "note" else command.upper())
    return f"{letter} {typed}"


PLUGIN = registry.OraclePlugin(lambda task, settings, human: Interactive(settings),
                               InteractiveSettings)
