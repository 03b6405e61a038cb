"""Processes forked from a server that has imported their code once: a referee
(amplify.truth.referee) starts in a fraction of a second instead of importing JAX again.

`connect(entry, preload)` returns a `multiprocessing.connection.Connection` to a new process that
runs `entry(connection)` ("module:function"). The process is forked from this process's server,
started from a fresh interpreter on first use (it holds nothing of this process's memory) and
ended with it; the server imports `preload` once (JAX without a backend started: forking stays
safe) and forks one child per connection. multiprocessing's own fork server does the same, but
runs the parent's `__main__` script again in every child, so a script without a main guard would
run twice. A child ends when its function returns; the server, when this process closes its end
(exits or is killed). Both ignore Ctrl-C: the parent decides what a Ctrl-C means.
"""
from __future__ import annotations

import atexit
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection


class _Server:
  """This process's server (`serve`): started on first use, ended with the process."""
  lock, process, socket, owner = threading.Lock(), None, None, None

  @classmethod
  def connect(cls, entry: str, preload: tuple[str, ...]) -> Connection:
    with cls.lock:
      for attempt in range(2):
        if cls.owner != os.getpid():  # none yet (or this is a fork of the process that had one)
          cls._start(preload)
        ours, theirs = socket.socketpair()
        try:
          socket.send_fds(cls.socket, [entry.encode()], [theirs.fileno()])
          if cls.socket.recv(1) != b"f":  # forked
            raise ConnectionError("the fork server has gone")
          return Connection(ours.detach())
        except OSError:  # the server has gone (killed): start another, once
          ours.close()
          cls.stop()
          if attempt:
            raise
        finally:
          theirs.close()

  @classmethod
  def _start(cls, preload) -> None:
    ours, theirs = socket.socketpair()
    code = f"from amplify.truth.forks import serve; serve({theirs.fileno()}, {list(preload)!r})"
    # a process group of its own: a Ctrl-C at the terminal reaches this process alone (the
    # server's SIGINT is ignored only once its interpreter has started)
    cls.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                   process_group=0)
    theirs.close()
    cls.socket, cls.owner = ours, os.getpid()

  @classmethod
  def stop(cls) -> None:
    if cls.owner == os.getpid():
      cls.socket.close()  # the server's input ends: it exits
      cls.process.wait()
    cls.owner = None


atexit.register(_Server.stop)


def connect(entry: str, preload: tuple[str, ...]) -> Connection:
  """A connection to a new process running `entry` ("module:function", called with its end);
  `preload`: the modules the server imports when it starts (the first call's)."""
  return _Server.connect(entry, preload)


def serve(fd: int, preload: list[str]) -> None:
  """The server: imports `preload`, then forks a child for each socket sent on `fd` until the
  other end closes."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
  for name in preload:
    importlib.import_module(name)
  server = socket.socket(fileno=fd)
  while True:
    try:
      entry, fds, _, _ = socket.recv_fds(server, 256, 1)
    except OSError:
      return
    if not fds:
      return  # the parent process ended
    if os.fork() == 0:
      server.close()
      signal.signal(signal.SIGCHLD, signal.SIG_DFL)
      try:
        module, function = entry.decode().split(":")
        getattr(importlib.import_module(module), function)(Connection(fds[0]))
      finally:
        os._exit(0)
    os.close(fds[0])
    server.sendall(b"f")
