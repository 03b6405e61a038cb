"""The pages' server, in a thread of the run (`--oracle=web`) or of `amplify-web serve`.

It binds its socket before it starts, so a port in use is an OSError in the caller's thread (one
line), not a traceback from the server's.
"""
from __future__ import annotations

import dataclasses
import socket
import threading
import time


@dataclasses.dataclass
class Running:
  url: str
  server: object
  thread: threading.Thread

  def stop(self) -> None:
    self.server.should_exit = True
    self.thread.join(timeout=10)


def url_of(host: str, port: int) -> str:
  return f"http://{'127.0.0.1' if host in ('0.0.0.0', 'localhost') else host}:{port}"


def start(workdir: str, workspace, host: str, port: int) -> Running:
  """Serves the pages of `workdir` (and `workspace`'s batches, if one) from a daemon thread;
  OSError where the address cannot be bound."""
  import uvicorn  # pylint: disable=g-import-not-at-top
  from amplify.views.web.app import make_app  # pylint: disable=g-import-not-at-top
  sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
  except OSError:
    sock.close()
    raise
  server = uvicorn.Server(uvicorn.Config(make_app(workdir, workspace), log_level="warning",
                                         access_log=False, timeout_graceful_shutdown=2))
  thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
  thread.start()
  while not server.started and thread.is_alive():
    time.sleep(0.02)
  return Running(url_of(host, sock.getsockname()[1]), server, thread)
