"""Who may sign in to a workdir's pages: WORKDIR/web_access.json, made by `amplify-web invite`.

Each person has a token (random, 32 bytes, shown once in their invitation link); the file keeps
only its SHA-256, with the person's name and role: `labeller` (answers questions) or `researcher`
(the batch's progress and the run browser). A page is signed in by the token in a cookie that
only this site's own pages send (HttpOnly, SameSite=Strict); every form carries an HMAC of the
token, which a page of another site cannot know.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile

FILE = "web_access.json"
ROLES = ("labeller", "researcher")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _digest(token: str) -> str:
  return hashlib.sha256(token.encode()).hexdigest()


_READ: dict = {}  # path -> (its stat's (mtime, size, inode), what it holds): read once a change


def read(workdir: str) -> dict:
  """{token digest: {"who", "role"}}; {} when nobody was invited."""
  path = os.path.join(workdir, FILE)
  try:
    st = os.stat(path)
  except FileNotFoundError:
    return {}
  stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
  if path in _READ and _READ[path][0] == stamp:
    return _READ[path][1]
  try:
    with open(path) as f:
      people = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: not readable as the invitations file ({e}); move it away and "
                     "invite again") from None
  if not isinstance(people, dict):
    raise ValueError(f"{path}: not the invitations file; move it away and invite again")
  _READ[path] = (stamp, people)
  return people


def invite(workdir: str, who: str, role: str = "labeller") -> str:
  """A new token for `who` (written to the file atomically, mode 0600): the invitation's."""
  if not NAME.match(who):
    raise ValueError(f"--who={who!r}: a name of letters, digits, '.', '_' or '-' (1-40).")
  if role not in ROLES:
    raise ValueError(f"--role={role!r}: one of {', '.join(ROLES)}.")
  os.makedirs(workdir, exist_ok=True)
  people = dict(read(workdir))
  token = secrets.token_urlsafe(32)
  people[_digest(token)] = {"who": who, "role": role}
  fd, tmp = tempfile.mkstemp(dir=workdir, prefix=".web_access.")  # mode 0600
  with os.fdopen(fd, "w") as f:
    json.dump(people, f, indent=1)
  os.replace(tmp, os.path.join(workdir, FILE))
  return token


def person(workdir: str, token: str | None) -> dict | None:
  """{"who", "role"} of the token's holder, or None."""
  if not token or len(token) > 200:
    return None
  return read(workdir).get(_digest(token))


def form_key(token: str) -> str:
  """What every form of a signed-in page carries: another site's page cannot make it."""
  return hmac.new(token.encode(), b"amplify form", hashlib.sha256).hexdigest()


def form_ok(token: str, key: str | None) -> bool:
  return bool(key) and hmac.compare_digest(form_key(token), str(key))
