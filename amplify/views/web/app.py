"""The pages: a labeller's question (`/label`), the batch's progress (`/progress`) and the run
browser (`/runs`), built on Starlette; HTML from Jinja2 templates (autoescaped) with a few lines
of inline script for the live counts, no build step.

Every request is signed in (`amplify.views.web.access`): no token is 401, an unknown token or a
page of the other role 403. Every form post must carry the token's form key and, where the
browser says where it comes from (Origin), come from this site: else 403 and nothing changes. A
labeller's page shows their own question and the counts, never another's answers, the run's
config or its metrics; the run browser (researchers) reads only what the run wrote: metrics,
summary and transcripts, and opens only runs it lists and plots it drew.
"""
from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

from amplify.oracles.workspace import OPS, Closed, Refused
from amplify.views.web import access

COOKIE = "amplify"
# what a labeller's form may ask of the batch: the workspace's operations but the pages' own
ACTIONS = {op: n for op, n in OPS.items() if op not in ("status", "overview")}


class Browser:
  """The runs beside the served workdir (its parent folder's workdirs), for researchers."""

  def __init__(self, workdir: str):
    self.workdir = os.path.abspath(workdir)
    self.root = os.path.dirname(self.workdir)
    self._plots: str | None = None  # this server's own folder for plots, made at the first
    self._lock = threading.Lock()  # matplotlib draws one figure set at a time

  def runs(self) -> list[str]:
    names = sorted(os.listdir(self.root)) if os.path.isdir(self.root) else []
    return [n for n in names if os.path.isfile(os.path.join(self.root, n, "config.json"))]

  def path(self, name: str) -> str:
    """A listed run's folder; anything else (a path, '..') is not one."""
    if name not in self.runs():
      raise Refused(f"no run named {name!r} here", 404)
    return os.path.join(self.root, name)

  def table(self, name: str) -> str:
    from amplify.views import report  # pylint: disable=g-import-not-at-top
    path = self.path(name)
    try:
      return report.format_table(path)
    except (OSError, ValueError, KeyError) as e:
      return f"no table yet: {e}"

  def _drawn(self, key: str, paths: list[str], draw) -> str | None:
    """The folder `draw(folder)` filled for the runs at `paths` as their metrics are now (drawn
    once, again when one changes); None where there is nothing to draw yet."""
    metrics = [os.path.join(p, "metrics.jsonl") for p in paths]
    if not metrics or not all(os.path.exists(m) for m in metrics):
      return None
    stamp = hashlib.blake2b(repr([(key, os.stat(m).st_mtime_ns) for m in metrics]).encode(),
                            digest_size=8).hexdigest()
    with self._lock:
      if self._plots is None:
        self._plots = tempfile.mkdtemp(prefix="amplify-web-plots-")
        atexit.register(shutil.rmtree, self._plots, ignore_errors=True)
      out = os.path.join(self._plots, stamp)
      if not os.path.isdir(out):
        try:
          draw(out)
        except (OSError, ValueError, KeyError):  # no finished round yet
          shutil.rmtree(out, ignore_errors=True)
          return None
    return out

  def _run_plots(self, name: str) -> str | None:
    """The folder of the run's plots (`amplify-report --plots`'s), drawn into this server's own."""
    from amplify.views import plots, report  # pylint: disable=g-import-not-at-top
    path = self.path(name)
    return self._drawn(name, [path], lambda out: plots.run_plots(path, report.read_metrics(path),
                                                                 out))

  def plots(self, name: str) -> list[str]:
    out = self._run_plots(name)
    return sorted(os.listdir(out)) if out else []

  def plot_file(self, name: str, file: str) -> str:
    out = self._run_plots(name)
    if out is None or file not in os.listdir(out):
      raise Refused(f"no plot {file!r} for {name!r}", 404)
    return os.path.join(out, file)

  def tree(self, name: str, r: str, row: str) -> str:
    """A question's transcript tree, drawn by `amplify-report --tree` in a process of its own:
    rebuilding a task to render its questions builds its world's truth too, which a run's
    process (this server's, with --oracle=web) never holds."""
    from amplify.views import transcript_tree  # pylint: disable=g-import-not-at-top
    path, spec = self.path(name), f"{r}:{row}"
    try:
      transcript_tree.parse_spec(spec)
      transcript_tree.Transcripts(path).load(int(r))  # said at once, without JAX
    except (OSError, ValueError) as e:
      raise Refused(str(e)) from None
    done = subprocess.run([sys.executable, "-m", "amplify.views.report", f"--workdir={path}",
                           f"--tree={spec}"], capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    if done.returncode:
      raise Refused((done.stderr.strip().splitlines() or ["the tree could not be drawn"])[-1]
                    .removeprefix("error: "))
    return done.stdout

  def compare(self, names: list[str]) -> str:
    """The runs' side-by-side table."""
    from amplify.views import report  # pylint: disable=g-import-not-at-top
    if not names:
      raise Refused("no run ticked: tick at least one run to compare")
    paths = [self.path(n) for n in names]
    try:
      return report.format_comparison(paths)
    except (OSError, ValueError, KeyError) as e:
      return f"cannot compare yet: {e}"

  def compare_plot(self, names: list[str]) -> str | None:
    """The runs' accuracy per round, one line each (`amplify-report --plots` of several)."""
    from amplify.views import plots, report  # pylint: disable=g-import-not-at-top
    paths = [self.path(n) for n in names]
    out = self._drawn("compare " + " ".join(names), paths, lambda out: plots.comparison_plot(
        [(n, report.read_metrics(p)) for n, p in zip(names, paths)], out))
    return None if out is None else os.path.join(out, "comparison.png")


def make_app(workdir: str, workspace=None) -> Starlette:
  """The pages of `workdir`'s run; `workspace` (an `amplify.oracles.workspace.Workspace`) is the
  batch being labelled, None on a server that only browses."""
  env = Environment(loader=PackageLoader("amplify.views.web"), autoescape=select_autoescape())
  browser = Browser(workdir)

  def page(template: str, status: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(env.get_template(template).render(**context), status)

  def error(status: int, message: str) -> HTMLResponse:
    return page("message.html", status, title={401: "sign in", 403: "refused", 404: "not found"}
                .get(status, "not accepted"), message=message)

  def holder(token: str | None):
    """{"who", "role"} of a token, or the Response refusing it."""
    if not token:
      return error(401, "Sign in with the link the researcher sent you.")
    try:
      person = access.person(workdir, token)
    except ValueError as e:  # a damaged invitations file: it says what to do
      return error(403, str(e))
    if person is None:
      return error(403, "This sign-in is not valid here: ask the researcher for a new link.")
    return person

  def signed_in(request, role: str):
    """(who, token) of the request, or the Response refusing it."""
    token = request.cookies.get(COOKIE)
    person = holder(token)
    if not isinstance(person, dict):
      return person
    if person["role"] != role:
      return error(403, f"These pages are for a {role}; you signed in as a {person['role']}.")
    return person["who"], token

  async def posted(request, role: str):
    """(who, form) of a form post from this site, or the Response refusing it."""
    who = signed_in(request, role)
    if not isinstance(who, tuple):
      return who
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
      return error(403, "A form from another site: refused.")
    form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
    if not access.form_ok(who[1], form.get("key")):
      return error(403, "This form is not from a page of this site (or the page is stale): "
                        "reload it.")
    return who[0], form

  async def call(op: str, who: str, *args):
    return await asyncio.wrap_future(workspace.submit(op, who, *args))

  async def batch(op: str, who: str) -> dict | None:
    """What `op` ("status", "overview") shows of the open batch; None when none is open."""
    try:
      return await call(op, who) if workspace is not None else None
    except Closed:
      return None

  async def label_view(who: str, token: str, message: str = "", status: int = 200):
    view = await batch("status", who)
    return page("label.html", status, view=view, who=who, key=access.form_key(token),
                message=message)

  async def signin(request):
    token = request.query_params.get("token", "")
    person = holder(token)
    if not isinstance(person, dict):
      return person
    response = RedirectResponse("/label" if person["role"] == "labeller" else "/runs", 303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=30 * 86400)
    return response

  async def home(request):
    person = holder(request.cookies.get(COOKIE))
    if not isinstance(person, dict):
      return person
    return RedirectResponse("/label" if person["role"] == "labeller" else "/runs", 303)

  async def label(request):
    who = signed_in(request, "labeller")
    return await label_view(*who) if isinstance(who, tuple) else who

  async def label_json(request):
    who = signed_in(request, "labeller")
    if not isinstance(who, tuple):
      return who
    view = await batch("status", who[0])
    return JSONResponse(None if view is None else {
        "batch": view["batch"], "total": view["total"], "me": view["me"],
        "lease_left": (view["question"] or {}).get("lease_left")})

  async def act(request):
    got = await posted(request, "labeller")
    if not isinstance(got, tuple):
      return got
    who, form = got
    token = request.cookies[COOKIE]
    action = form.get("action")
    try:
      arguments = ACTIONS.get(action) if isinstance(action, str) else None
      if arguments is None:
        raise Refused(f"no action {str(action)[:20]!r}")
      if arguments == 0:  # next, undo
        await call(action, who)
      else:  # on the question and lease the form names, with its text where the action takes it
        try:
          q, lease = int(form.get("q", "")), int(form.get("lease", ""))
        except ValueError:
          raise Refused("the form names no question") from None
        await call(action, who, q, lease, *([form.get("text", "")] if arguments == 3 else []))
    except Refused as e:
      return await label_view(who, token, str(e), e.status)
    except Closed:
      pass  # the batch ended meanwhile: the page says so
    return RedirectResponse("/label", 303)

  async def progress(request):
    who = signed_in(request, "researcher")
    if not isinstance(who, tuple):
      return who
    return page("progress.html", view=await batch("overview", who[0]))

  def researcher_page(fn):
    """A run-browser page: signed in as a researcher; fn(request) -> Response runs in a worker
    thread (it reads files and draws plots); a Refused is its status and reason."""
    async def endpoint(request):
      who = signed_in(request, "researcher")
      if not isinstance(who, tuple):
        return who
      try:
        return await run_in_threadpool(fn, request)
      except Refused as e:
        return error(e.status, str(e))
    return endpoint

  @researcher_page
  def runs(request):
    return page("runs.html", runs=browser.runs(), here=os.path.basename(browser.workdir),
                labelling=workspace is not None)

  @researcher_page
  def run(request):
    name = request.path_params["name"]
    return page("run.html", name=name, table=browser.table(name), plots=browser.plots(name))

  @researcher_page
  def plot(request):
    return FileResponse(browser.plot_file(request.path_params["name"],
                                          request.path_params["file"]), media_type="image/png")

  @researcher_page
  def tree(request):
    name, q = request.path_params["name"], request.query_params
    text = browser.tree(name, q.get("round", ""), q.get("row", ""))
    return page("tree.html", name=name, text=text, round=q.get("round"), row=q.get("row"))

  @researcher_page
  def compare(request):
    names = request.query_params.getlist("run")
    return page("compare.html", names=names, table=browser.compare(names), plot=bool(names))

  @researcher_page
  def compare_plot(request):
    path = browser.compare_plot(request.query_params.getlist("run"))
    return FileResponse(path, media_type="image/png") if path else error(404, "no plot yet")

  return Starlette(routes=[
      Route("/", home), Route("/signin", signin), Route("/label", label),
      Route("/label.json", label_json), Route("/act", act, methods=["POST"]),
      Route("/progress", progress), Route("/runs", runs), Route("/runs/{name}", run),
      Route("/runs/{name}/plots/{file}", plot), Route("/runs/{name}/tree", tree),
      Route("/compare", compare), Route("/compare.png", compare_plot)])
