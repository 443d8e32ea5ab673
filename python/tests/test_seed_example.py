"""The original README's usage example runs on Linux, against our nodes on loopback."""

from conftest import run
from seed_example import run_seed_example


def test_original_readme_example(tmp_path):
    run(run_seed_example(str(tmp_path)))
