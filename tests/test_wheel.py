"""The built wheel works on its own: installed into a clean environment and run from a folder
outside the repository that holds a user's `runtime.py` (tests/wheel_smoke.py does the work)."""
import pytest

from wheel_smoke import smoke


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    steps = smoke(tmp_path)
    assert steps["version"].stdout.split()[1][0].isdigit()
