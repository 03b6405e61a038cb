"""Progress on a long phase: a line every EVERY seconds while it runs, none if it ends sooner.

  with progress.heartbeat("round 3, distillation") as status:
    for ...:
      status(f"{done}/{total} steps")

prints "round 3, distillation: 400/1500 steps (20 s)" every EVERY seconds, from a daemon thread,
so a phase that waits on something else (the referee's baselines) reports too. The main thread
only sets the status text; printing never slows the loop.
"""
from __future__ import annotations

import contextlib
import threading
import time

EVERY = 10.0  # seconds between lines


@contextlib.contextmanager
def heartbeat(name: str, every: float = EVERY):
  """Yields `status(text)`, which sets what the next line says after the phase's name."""
  status, stop, start = [""], threading.Event(), time.time()

  def beat():
    while not stop.wait(every):
      print(f"{name}: {status[0] + ' ' if status[0] else ''}({time.time() - start:.0f} s)",
            flush=True)

  thread = threading.Thread(target=beat, daemon=True)
  thread.start()
  try:
    yield lambda text: status.__setitem__(0, text)
  finally:
    stop.set()
    thread.join()
