"""libFuzzer entry point: `python atheris_main.py TARGET [libFuzzer flags] [CORPUS_DIR ...]`.

The decoder is imported under atheris instrumentation so the fuzzing is coverage-guided.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

# fuzz_targets too: the avro_columns target steers by its Python reference decoder.
with atheris.instrument_imports(include=["rvcloud", "fuzz_targets"]):
    import fuzz_targets


def main() -> None:
    name = sys.argv.pop(1)
    target = fuzz_targets.TARGETS[name]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
