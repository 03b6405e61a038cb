"""Per-question oracles that break the worker's channel (tests/test_worker_edges.py): imported by
name in their worker process."""
import os
import socket
import sys
import threading
import time


def half_closes(question, tools):
  """Shuts its side of the channel for writing, then goes on forever."""
  socket.socket(fileno=os.dup(int(sys.argv[1]))).shutdown(socket.SHUT_WR)
  time.sleep(3600)


def dies_while_asking(question, tools):
  """Its process ends while the run is answering its ask."""
  threading.Timer(0.05, os._exit, (3,)).start()
  tools.ask(question.text)
  time.sleep(3600)


def looks_up_infinity(question, tools):
  return tools.lookup(float("inf")).text
