"""Per-question oracles written as a user would: plain functions of a rendered question and the
tools (`--oracle=callable --oracle.fn=oracle_fns:NAME`, with tests/ on PYTHONPATH)."""
import re


def _add(total: dict, text: str) -> None:
  for pair in text.split():
    name, count = pair.split("=")
    total[name] = total.get(name, 0) + int(count)


def lexicon_by_text(question, tools):
  """Lexicon's H from the text alone: look up a set of one or two, else ask about two halves."""
  entities = re.findall(r"e\d+", question.text)
  total: dict = {}
  if len(entities) <= 2:
    for entity in entities:
      reply = tools.lookup(entity)
      if not reply.known:
        return None
      _add(total, reply.text.replace(f"{entity}: ", "") + "=1")
  else:
    half = (len(entities) + 1) // 2
    for part in (entities[:half], entities[half:]):
      reply = tools.ask(" ".join(part))
      if not reply.known or sum(int(p.split("=")[1]) for p in reply.text.split()) != len(part):
        return None
      _add(total, reply.text)
  return " ".join(f"{name}={count}" for name, count in total.items())


def permutation_by_text(question, tools):
  """Permutation powering's H from the text: sigma^k(x) from sigma^(k//2) twice, + one look-up."""
  k, x = re.fullmatch(r"sigma\^(\d+)\((\w+)\) = \?", question.text).groups()
  k = int(k)
  if k == 1:
    reply = tools.lookup(x)
    return reply.text.split(" = ")[1] if reply.known else None
  y = tools.ask(f"sigma^{k // 2}({x})")
  if not y.known:
    return None
  y = tools.ask(f"sigma^{k // 2}({y.text})")
  if not y.known:
    return None
  if k % 2:
    y = tools.lookup(y.text)
    return y.text.split(" = ")[1] if y.known else None
  return y.text


_ANSWERED = [0]


def held_permutation_by_text(question, tools):
  """permutation_by_text that, once it has answered $ORACLE_HOLD_AFTER questions in this process,
  answers no more (it waits, as a person gone for lunch): a run stopped mid-batch at that point,
  however fast the machine, for a test to kill."""
  import os
  import time
  if _ANSWERED[0] >= int(os.environ.get("ORACLE_HOLD_AFTER", "-1")) >= 0:
    time.sleep(3600)
  _ANSWERED[0] += 1
  return permutation_by_text(question, tools)


def greedy(question, tools):
  """Asks six times on a budget of four: the last two are overruns, answered IDK."""
  return [tools.ask(question.tokens) for _ in range(6)][-1].tokens


# -- oracles that misbehave (tests/test_oracle_worker.py); they log to $ORACLE_LOG ------------

def _log(**record) -> None:
  import json
  import os
  with open(os.environ["ORACLE_LOG"], "a") as f:
    f.write(json.dumps({"pid": os.getpid(), **record}) + "\n")


def where_am_i(question, tools):
  """Logs its process and whether JAX is loaded there, then answers as permutation_by_text."""
  import sys
  _log(jax="jax" in sys.modules, index=question.index)
  return permutation_by_text(question, tools)


def hangs_on_2(question, tools):
  """Never returns on question 2."""
  import time
  if question.index == 2:
    _log(hanging=question.index)
    while True:
      time.sleep(1)
  return permutation_by_text(question, tools)


def raises_on_2(question, tools):
  if question.index == 2:
    raise ValueError("the remote model said no\nsecond line of its traceback")
  return permutation_by_text(question, tools)


def dies_on_5(question, tools):
  """The process ends (as on a segfault in a native library) on question 5."""
  import os
  if question.index == 5:
    os._exit(3)
  return permutation_by_text(question, tools)


def answers_an_object(question, tools):
  return object()


def _ledgers(tools) -> dict:
  """What might hold this question's budget and record, by route from the handle."""
  import gc
  import inspect
  import types
  # instances of these hold no attributes of their own, so none of them is a ledger (skipping
  # them keeps a walk of a large heap quick; every other object is looked at)
  plain = (dict, list, tuple, set, frozenset, str, bytes, int, float, types.CellType,
           types.FrameType, types.CodeType, types.MethodType, types.MappingProxyType)
  is_ledger = lambda o: (type(o) not in plain and not isinstance(o, type) and
                         inspect.getattr_static(o, "_record", None) is not None and
                         inspect.getattr_static(o, "_serve", None) is not None)
  functions = [getattr(tools, name) for name in dir(tools) if not name.startswith("__")]
  cells = [c.cell_contents for f in functions for c in (getattr(f, "__closure__", None) or ())]
  found = {"closure": [o for o in cells if is_ledger(o)],
           "self": [o for o in (getattr(x, "__self__", None) for x in functions + cells)
                    if o is not None and is_ledger(o)],
           "gc": [o for o in gc.get_objects() if is_ledger(o)]}
  reached, frontier = {id(tools): tools}, [tools]
  for _ in range(4):  # what the handle refers to, and so on
    frontier = [r for o in frontier for r in gc.get_referents(o) if id(r) not in reached
                and reached.setdefault(id(r), r) is r]
  found["referents"] = [o for o in reached.values() if is_ledger(o)]
  return found


def resets_its_budget(question, tools):
  """Spends its look-ups, then looks for the ledger behind its tools by four routes; where it
  finds one it resets the record (a fresh budget) and reads Mz through it unrecorded. Then it
  looks up four times more: known replies mean the budget was escaped."""
  x = question.text[question.text.index("(") + 1]
  for _ in range(question.max_lookups):
    tools.lookup(x)
  found = _ledgers(tools)
  resets = unrecorded = 0
  for ledger in {id(o): o for route in found.values() for o in route}.values():
    try:
      ledger._record = type(ledger._record)()
      resets += 1
      ledger._serve("lookup", question.index, 0)
      unrecorded += 1
    except Exception:
      pass
  known_after = sum(tools.lookup(x).known for _ in range(4))
  _log(found={route: len(objs) for route, objs in found.items()}, resets=resets,
       unrecorded=unrecorded, known_after=known_after)
  return None
