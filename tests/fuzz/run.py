"""Run the coverage-guided fuzz targets (atheris/libFuzzer) for a fixed time each.

    python tests/fuzz/run.py --seconds 600 [--target rib] [--crashes DIR] [--corpus DIR]
                             [--save-regressions]

Seeds are generated into the corpus directory first (from the shared real MRT files'
first records and from the writer). Crash, timeout and OOM inputs are written to
``--crashes`` (default ./fuzz-crashes); with ``--save-regressions`` each is also copied
to tests/fuzz/regressions/TARGET-SHA1.bin, which test_regressions.py replays.
Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fuzz_seeds  # noqa: E402
import fuzz_targets  # noqa: E402

REGRESSIONS = HERE / "regressions"


def default_shared() -> Path:
    env = os.environ.get("RVCLOUD_SHARED_MRT")
    return Path(env) if env else HERE.parent.parent.parent / "shared" / "data" / "mrt"


def run_target(name: str, seconds: int, corpus: Path, crashes: Path, shared: Path) -> list[Path]:
    n = fuzz_seeds.write_seeds(name, shared, corpus)
    crashes.mkdir(parents=True, exist_ok=True)
    before = set(crashes.iterdir())
    cmd = [
        sys.executable,
        str(HERE / "atheris_main.py"),
        name,
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=4096",
        "-max_len=65536",
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/{name}-",
        str(corpus),
    ]
    print(f"[fuzz] {name}: {n} seeds, {seconds} s", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 120)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-12:])
    print(tail, flush=True)
    found = sorted(set(crashes.iterdir()) - before)
    if proc.returncode != 0 and not found:
        raise SystemExit(f"[fuzz] {name}: fuzzer exited {proc.returncode} without an artifact")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--target", choices=sorted(fuzz_targets.TARGETS), action="append")
    ap.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"))
    ap.add_argument("--corpus", type=Path, help="keep corpora here (one sub-directory per target)")
    ap.add_argument("--shared", type=Path, default=default_shared())
    ap.add_argument("--save-regressions", action="store_true")
    args = ap.parse_args(argv)
    findings: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="rvcloud-fuzz-") as tmp:
        for name in args.target or list(fuzz_targets.TARGETS):
            corpus = (args.corpus or Path(tmp)) / name
            findings += run_target(name, args.seconds, corpus, args.crashes.resolve(), args.shared)
    for f in findings:
        print(f"[fuzz] FINDING {f}")
        if args.save_regressions:
            name = f.name.split("-", 1)[0]
            data = f.read_bytes()
            REGRESSIONS.mkdir(exist_ok=True)
            shutil.copyfile(f, REGRESSIONS / f"{name}-{hashlib.sha1(data).hexdigest()[:16]}.bin")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
