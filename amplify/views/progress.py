"""Progress on a long phase: a line every EVERY seconds while it runs, none if it ends sooner.

  with progress.heartbeat("round 3, distillation") as status:
    for ...:
      status(f"{done}/{total} steps")

prints "round 3, distillation: 400/1500 steps (20 s)" every EVERY seconds, from a daemon thread,
so a phase that waits on something else (the referee's baselines) reports too. The main thread
only sets the status text, or a function that makes it when a line is printed (for text that
costs a pass over the work); printing never slows the loop.
"""
from __future__ import annotations

import contextlib
import threading
import time

EVERY = 10.0  # seconds between lines


@contextlib.contextmanager
def heartbeat(name: str, every: float = EVERY):
  """Yields `status(text)`, which sets what the next line says after the phase's name (`text`
a string, or a function that returns one, called as the line is printed)."""
  status, stop, start = [""], threading.Event(), time.time()

  def beat():
    while not stop.wait(every):
      text = status[0]() if callable(status[0]) else status[0]
      print(f"{name}: {text + ' ' if text else ''}({time.time() - start:.0f} s)", flush=True)

  thread = threading.Thread(target=beat, daemon=True)
  thread.start()
  try:
    yield lambda text: status.__setitem__(0, text)
  finally:
    stop.set()
    thread.join()
