"""The command line of the web pages (`amplify-web`, or `python -m amplify.views.web.cli`).

  amplify-web invite --workdir=DIR --who=NAME [--role=researcher]   a sign-in link for NAME
  amplify-web serve --workdir=DIR [--port=8765]                     the run browser for DIR

A run with `--oracle=web` serves the same pages, and labelling, itself.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

from amplify.views.web import access
from amplify.views.web.server import start, url_of

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir.")
_WHO = flags.DEFINE_string("who", None, "invite: the person's name.")
_ROLE = flags.DEFINE_enum("role", "labeller", access.ROLES, "invite: labeller (answers) or "
                          "researcher (progress and the run browser).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Where the pages are served (or, for invite, "
                            "the address in the link).")
_PORT = flags.DEFINE_integer("port", 8765, "The pages' port.", lower_bound=0, upper_bound=65535)


def main(argv):
  if len(argv) != 2 or argv[1] not in ("invite", "serve"):
    raise app.UsageError("amplify-web invite --workdir=DIR --who=NAME | amplify-web serve "
                         "--workdir=DIR")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is needed: the run's workdir.")
  try:
    if argv[1] == "invite":
      if not _WHO.value:
        raise ValueError("--who is needed: the person's name.")
      token = access.invite(_WORKDIR.value, _WHO.value, _ROLE.value)
      print(f"{url_of(_HOST.value, _PORT.value)}/signin?token={token}")
      return
    if not os.path.isdir(_WORKDIR.value):
      raise ValueError(f"--workdir={_WORKDIR.value}: no such folder; point it at a run's "
                       "workdir (its parent's other runs are listed beside it).")
    try:
      running = start(_WORKDIR.value, None, _HOST.value, _PORT.value)
    except OSError as e:
      raise OSError(f"cannot serve on --host={_HOST.value} --port={_PORT.value} "
                    f"({e.strerror or e}): pass another --host or --port") from None
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"the run browser of {_WORKDIR.value} at {running.url} (a researcher's link: "
        f"amplify-web invite --workdir={_WORKDIR.value} --who=NAME --role=researcher); Ctrl-C "
        "stops it", flush=True)
  try:
    running.thread.join()
  except KeyboardInterrupt:
    running.stop()


def cli() -> None:
  app.run(main)


if __name__ == "__main__":
  cli()
