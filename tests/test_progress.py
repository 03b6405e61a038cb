"""Progress lines on a long phase (amplify.views.progress): the status set last, the seconds so far,
and nothing once the phase has ended."""
import time

from amplify.views import progress


def test_a_long_phase_prints_its_status_and_a_short_one_prints_nothing(capsys):
  with progress.heartbeat("round 3, distillation", every=0.05) as status:
    status("400/1500 steps")
    time.sleep(0.3)
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
    time.sleep(0.3)
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == len(calls) >= 2  # once a line, never in between
  assert lines[0].startswith("labelling: 1 answered (") and lines[1].startswith("labelling: 2 ")
