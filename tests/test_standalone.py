"""The repository stands alone: the seed ships in examples/, and nothing needs ../shared."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NORMATIVE_SEED = ROOT.parent / "shared" / "programs" / "cnn_seed.phk"


def test_seed_is_in_the_repository(seed_path):
    assert seed_path == ROOT / "examples" / "cnn_seed.phk" and seed_path.is_file()


@pytest.mark.skipif(not NORMATIVE_SEED.exists(), reason="no ../shared beside this clone")
def test_seed_is_the_normative_program_byte_for_byte():
    assert (ROOT / "examples" / "cnn_seed.phk").read_bytes() == NORMATIVE_SEED.read_bytes()


def _code_files():
    for folder in ("tests", "benchmarks", "phc", "runtime", ".ci"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", "") and "__pycache__" not in path.parts:
                yield path


def test_no_code_reads_from_shared():
    # a path built to ../shared: `parent / "shared"` or a literal "../shared…"
    pattern = re.compile(r"""(/\s*["']shared["']|["']\.\./shared)""")
    offenders = [str(p.relative_to(ROOT)) for p in _code_files()
                 if p.name != "test_standalone.py" and pattern.search(p.read_text(errors="replace"))]
    assert offenders == []


def test_readme_commands_need_nothing_beside_the_clone():
    assert "../shared" not in (ROOT / "README.md").read_text(encoding="utf-8")
