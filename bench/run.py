"""Side-by-side benchmark: our whole MRT -> Avro conversion against bgpdump, pybgpkit-parser, mrtparse.

Run by ``make bench``. Each tool runs on the same files, alternating tool by tool within
each repetition; per run we take wall time, CPU time (user + sys of the process and all
its descendants: ``wait4`` plus 5 ms samples of ``/proc``, for descendants it does not
reap itself) and peak RSS (the process tree's summed ``VmRSS``, sampled every 5 ms;
forked workers share pages, so this over-counts).
Medians go to ``bench/RESULTS.md`` with the machine, the load average and the command.

The peers only print (bgpdump -m to /dev/null) or iterate parsed elements; ours reads
the compressed MRT and writes Avro with every column (deflate).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SHARED = Path(os.environ.get("RVCLOUD_SHARED_MRT", ROOT.parent / "shared" / "data" / "mrt"))
OURS_PY = ROOT / ".venv" / "bin" / "python"
PEERS_PY = OUT / "peers-venv" / "bin" / "python"

FILES = {
    "jinx RIB": SHARED / "libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2",
    "synthetic full RIB": OUT / "synth-rib.bz2",
    "rv2 updates 2026": SHARED / "mrtparser__updates.20260222.1530.bz2",
    "et-header updates 2015": SHARED / "bgpdump__updates.et-header.2015.gz",
    "synthetic busy updates": OUT / "synth-updates.bz2",
}

BGPKIT = "import sys\nfrom pybgpkit_parser import Parser\nfor e in Parser(url=sys.argv[1]):\n    pass\n"
MRTPARSE = "import sys\nfrom mrtparse import Reader\nfor e in Reader(sys.argv[1]):\n    pass\n"


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    pss_mib: float
    rc: int


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_sample(root: int, cpu: dict[int, float]) -> tuple[int, int]:
    """Summed VmRSS and Pss (KiB) of ``root`` and its descendants; records each one's CPU seconds."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/status") as f:
                vm = next((int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")), 0)
        except (OSError, IndexError):
            continue
        pid = int(d)
        children.setdefault(int(fields[1]), []).append(pid)  # field 4: ppid
        rss[pid] = vm
        ticks[pid] = int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    total = pss = 0
    todo = [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        if p in ticks:
            cpu[p] = max(cpu.get(p, 0.0), ticks[p] / _TICK)
            try:  # proportional set size: pages shared between the processes counted once
                with open(f"/proc/{p}/smaps_rollup") as f:
                    pss += next((int(ln.split()[1]) for ln in f if ln.startswith("Pss:")), 0)
            except OSError:
                pass
        todo += children.get(p, [])
    return total, pss


def measure(cmd: list[str]) -> Run:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = peak_pss = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        while not done.is_set():
            rss, pss = _tree_sample(proc.pid, cpu)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            done.wait(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # wait4 covers the process and the descendants it reaped; the samples also cover those
    # it did not (the converter's fork-server workers), to within the 5 ms sampling period.
    cpu_s = max(ru.ru_utime + ru.ru_stime, sum(cpu.values()))
    return Run(wall, cpu_s, max(peak, ru.ru_maxrss) / 1024, peak_pss / 1024, proc.returncode)


def tools(tmp: Path) -> dict[str, list[str] | None]:
    out = str(tmp / "avro")
    return {
        "ours (convert to Avro)": [str(OURS_PY.parent / "rvcloud"), "convert", "{f}", "-o", out],
        "bgpdump -m": ["bgpdump", "-m", "{f}"] if shutil.which("bgpdump") else None,
        "pybgpkit-parser": [str(PEERS_PY), "-c", BGPKIT, "{f}"] if PEERS_PY.exists() else None,
        "mrtparse": [str(PEERS_PY), "-c", MRTPARSE, "{f}"] if PEERS_PY.exists() else None,
    }


def _version(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def machine() -> list[str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    pip = [str(PEERS_PY), "-m", "pip", "show"]

    def pipver(pkg: str) -> str:
        try:
            r = subprocess.run([*pip, pkg], capture_output=True, text=True, timeout=60)
            return next((ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("Version:")), "?")
        except (OSError, subprocess.SubprocessError):
            return "?"

    ours = subprocess.run(
        [str(OURS_PY), "-c", "import fastavro, isal; print(fastavro.__version__, isal.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.split()
    return [
        f"- nproc: {os.cpu_count()}; CPU: {cpu}; memory: {mem_kib / 1048576:.1f} GiB; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; fastavro {ours[0] if ours else '?'}, "
        f"isal {ours[1] if len(ours) > 1 else '?'}",
        f"- bgpdump: {_version(['bgpdump', '-V'])}; lbzip2: {_version(['lbzip2', '-V'])}",
        f"- pybgpkit-parser {pipver('pybgpkit-parser')}, mrtparse {pipver('mrtparse')} (bench venv)",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--slow-reps", type=int, default=1, help="repetitions of mrtparse on files > 3 MB")
    ap.add_argument("--only", action="append", help="file label(s) to run (default all)")
    ap.add_argument("--tools", help="comma-separated subset of: ours,bgpdump,bgpkit,mrtparse")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        all_tools = tools(tmp)
        if args.tools:
            keys = {"ours": "ours", "bgpdump": "bgpdump", "bgpkit": "pybgpkit", "mrtparse": "mrtparse"}
            want = [keys[k.strip()] for k in args.tools.split(",")]
            all_tools = {k: v for k, v in all_tools.items() if any(k.startswith(w) for w in want)}
        results: dict[str, dict[str, list[Run]]] = {}
        for label, path in FILES.items():
            if args.only and label not in args.only:
                continue
            if not path.exists():
                print(f"missing {path}; skipped", file=sys.stderr)
                continue
            res = results.setdefault(label, {})
            big = path.stat().st_size > 3_000_000
            for rep in range(args.reps):
                for name, cmd in all_tools.items():
                    if cmd is None:
                        continue
                    if name == "mrtparse" and big and rep >= args.slow_reps:
                        continue
                    r = measure([c.replace("{f}", str(path)) for c in cmd])
                    res.setdefault(name, []).append(r)
                    print(
                        f"{label:24} {name:24} {r.wall:7.2f}s cpu {r.cpu:7.2f}s rss {r.rss_mib:6.0f} MiB"
                        f" pss {r.pss_mib:6.0f} MiB",
                        flush=True,
                    )
    load_after = os.getloadavg()
    write_report(args, results, load_before, load_after)
    return 0


def write_report(
    args: argparse.Namespace,
    results: dict[str, dict[str, list[Run]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    lines = [
        "# Benchmark: MRT to Avro (ours) against bgpdump, pybgpkit-parser, mrtparse",
        "",
        "Generated by `bench/run.py` (`make bench`); the optimisation log and the service",
        "figures below the tables are kept by hand from `bench/profile_steps.py` and",
        "`bench/service.py`.",
        "",
        "**What is measured.** Ours is the whole conversion: compressed MRT in, Avro with every",
        "column out (deflate), `rvcloud convert FILE -o DIR` (process start and imports included;",
        "its RIB worker processes included). The peers only parse: `bgpdump -m FILE > /dev/null`,",
        "pybgpkit-parser `for e in Parser(url=FILE): pass`, mrtparse `for e in Reader(FILE): pass`.",
        "Wall and CPU (user+sys incl. children) are medians; peak RSS is the largest summed RSS",
        "of the process tree (sampled every 5 ms; over-counts pages the converter's worker",
        "processes share), peak PSS the same with shared pages counted once.",
        "",
        "## Machine",
        "",
        *machine(),
        f"- load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
        f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}",
        f"- command: `{shlex.join([sys.executable.replace(str(ROOT) + '/', ''), *sys.argv])}` "
        f"({time.strftime('%Y-%m-%d %H:%M %Z')})",
        f"- repetitions: {args.reps} per tool per file, alternating; mrtparse {args.slow_reps} on "
        "files over 3 MB (it takes minutes there)",
        "",
        *summary(results),
        "## Results",
        "",
    ]
    for label, res in results.items():
        lines += [
            f"### {label}: `{FILES[label].name}` ({FILES[label].stat().st_size / 1e6:.1f} MB)",
            "",
            "| tool | runs | wall s | CPU s | peak RSS MiB | peak PSS MiB | ours/peer wall | ours/peer CPU |",
            "|---|---|---|---|---|---|---|---|",
        ]
        ours = res.get("ours (convert to Avro)")
        ow = statistics.median(r.wall for r in ours) if ours else None
        oc = statistics.median(r.cpu for r in ours) if ours else None
        for name, runs in res.items():
            w = statistics.median(r.wall for r in runs)
            c = statistics.median(r.cpu for r in runs)
            m = max(r.rss_mib for r in runs)
            mp = max(r.pss_mib for r in runs)
            bad = " (exit != 0)" if any(r.rc for r in runs) else ""
            rw = f"{ow / w:.2f}" if ow and not name.startswith("ours") else ""
            rc = f"{oc / c:.2f}" if oc and not name.startswith("ours") else ""
            lines.append(
                f"| {name}{bad} | {len(runs)} | {w:.2f} | {c:.2f} | {m:.0f} | {mp:.0f} | {rw} | {rc} |"
            )
        lines.append("")
    steps = ROOT / "bench" / "notes.md"
    if steps.exists():
        lines += [steps.read_text().rstrip(), ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


def summary(results: dict[str, dict[str, list[Run]]]) -> list[str]:
    """One line per input: ours against the two peers the acceptance names, and our memory."""

    def med(runs: list[Run] | None) -> float | None:
        return statistics.median(r.wall for r in runs) if runs else None

    out = [
        "## Summary",
        "",
        "Acceptance (issue 7): on the RIBs ours <= 0.5x bgpdump and <= 0.3x pybgpkit-parser; "
        "peak RSS < 300 MiB on every input.",
        "",
        "| input | ours wall s | bgpdump -m | pybgpkit-parser | ours/bgpdump | ours/pybgpkit "
        "| ours peak RSS / PSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, res in results.items():
        ours, bd, bk = (
            med(res.get("ours (convert to Avro)")),
            med(res.get("bgpdump -m")),
            med(res.get("pybgpkit-parser")),
        )
        mem = res.get("ours (convert to Avro)") or []
        rss = f"{max(r.rss_mib for r in mem):.0f} / {max(r.pss_mib for r in mem):.0f}" if mem else ""

        def fmt(v: float | None) -> str:
            return f"{v:.2f}" if v is not None else ""

        def ratio(a: float | None, b: float | None) -> str:
            return f"{a / b:.2f}" if a and b else ""

        cells = [fmt(ours), fmt(bd), fmt(bk), ratio(ours, bd), ratio(ours, bk), rss]
        out.append(f"| {label} | {' | '.join(cells)} |")
    return [*out, ""]


if __name__ == "__main__":
    raise SystemExit(main())
