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


def slow_permutation_by_text(question, tools):
  """permutation_by_text at a person's pace (a few ms a question): time to kill a run mid-batch."""
  import time
  time.sleep(0.003)
  return permutation_by_text(question, tools)
