"""amplify's command line with the digit_sum task registered (docs/plugins.md, "Registering")."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import amplify_digit_sum  # noqa: E402  (after its folder is on sys.path)
from amplify import main, registry  # noqa: E402

registry.register_task("digit_sum", amplify_digit_sum.make_digit_sum,
                       amplify_digit_sum.DigitSumSettings, config=amplify_digit_sum.get_config)

if __name__ == "__main__":
  main.cli()
