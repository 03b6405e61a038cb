"""Progress lines on a long phase (amplify.views.progress): the status set last, the seconds so far,
and nothing once the phase has ended. The tests wait for the lines they need (up to a generous
deadline), not for a fixed time, so a slow machine prints fewer lines, not a failure."""
import time

from amplify.views import progress


def _until(done, deadline_s: float = 60.0) -> None:
  end = time.time() + deadline_s
  while not done():
    assert time.time() < end, "no progress line within the deadline"
    time.sleep(0.01)


def test_a_long_phase_prints_its_status_and_a_short_one_prints_nothing(capsys):
  calls = []

  def text():
    calls.append(1)
    return "400/1500 steps"

  with progress.heartbeat("round 3, distillation", every=0.05) as status:
    status(text)
    _until(lambda: calls)
  lines = capsys.readouterr().out.splitlines()
  assert lines and all(line.startswith("round 3, distillation: 400/1500 steps (") for line in lines)
  time.sleep(0.2)
  assert capsys.readouterr().out == ""  # the thread stopped with the phase
  with progress.heartbeat("quick", every=5):
    pass
  assert capsys.readouterr().out == ""


def test_a_status_function_is_called_only_when_a_line_is_printed(capsys):
  calls = []

  def text():
    calls.append(1)
    return f"{len(calls)} answered"

  with progress.heartbeat("labelling", every=0.05) as status:
    status(text)
    _until(lambda: len(calls) >= 2)
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == len(calls) >= 2  # once a line, never in between
  assert lines[0].startswith("labelling: 1 answered (") and lines[1].startswith("labelling: 2 ")
