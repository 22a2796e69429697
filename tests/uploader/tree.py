"""Small archive trees for the uploader tests: every layout, our synthetic files plus real ones.

Synthetic files come from ``mrt.synth`` at a tiny scale (deterministic: the same seed
gives the same bytes). The real files are symlinks into the shared sample directory
(read from there, never copied into the repository).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from rvcloud.mrt.synth import write_synthetic_rib, write_synthetic_updates
from tests.conftest import shared_mrt_dir

# shared sample → archive path (one per layout family, all decoded cleanly by every oracle)
REAL_FILES: dict[str, str] = {
    "libbgpstream__routeviews.route-views.jinx.updates.1401493500.bz2": (
        "route-views.jinx/bgpdata/2014.05/UPDATES/updates.20140530.2345.bz2"
    ),
    "bgpdump__updates.20100722.2015.gz": "bgpdata/2010.07/UPDATES/updates.20100722.2015.gz",
    "libbgpstream__ris.rrc06.updates.1427846400.gz": "rrc06/2015.04/updates.20150401.0000.gz",
    "bgpkit__rrc03__updates.20100227.1600.first-796-records.gz": "rrc03/2010.02/updates.20100227.1600.gz",
    "bgpdump__bview.ipv4_unicast_add_path.gz": "rrc00/2019.01/bview.20190101.0000.gz",
}


@dataclass(frozen=True)
class Tree:
    root: Path
    files: dict[str, Path]  # archive path → local path

    @property
    def names(self) -> set[str]:
        return set(self.files)


def synthetic_path(root: Path, archive_path: str, kind: str, seed: int) -> Path:
    path = root / archive_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # RIS files are gzip. synth's own gzip mode divides by zero on a small target (the
    # gzip header is written before any data), so those are written plain and gzipped here.
    gz = archive_path.endswith(".gz")
    out = path.with_name(path.name + ".plain") if gz else path
    compress = "none" if gz else "bz2"
    if kind == "rib":
        write_synthetic_rib(out, n_v4=120, n_v6=12, peers=3, seed=seed, compress=compress)
    else:
        write_synthetic_updates(out, target_compressed_bytes=3000, peers=3, seed=seed, compress=compress)
    if gz:
        path.write_bytes(gzip.compress(out.read_bytes(), mtime=0))
        out.unlink()
    return path


def synthetic_names(months: int = 2, per_month: int = 2) -> list[tuple[str, str]]:
    """(archive path, kind) for several collectors, months and all three layouts."""
    out: list[tuple[str, str]] = []
    for m in range(1, months + 1):
        ym, ymd = f"2024.{m:02d}", f"2024{m:02d}01"
        for h in range(per_month):
            hhmm = f"{2 * h:02d}00"
            for collector in ("route-views.jinx", "route-views.sydney"):
                out.append((f"{collector}/bgpdata/{ym}/RIBS/rib.{ymd}.{hhmm}.bz2", "rib"))
                out.append((f"{collector}/bgpdata/{ym}/UPDATES/updates.{ymd}.{hhmm}.bz2", "updates"))
            out.append((f"bgpdata/{ym}/UPDATES/updates.{ymd}.{hhmm}.bz2", "updates"))  # old route-views2
            out.append((f"rrc00/{ym}/updates.{ymd}.{hhmm}.gz", "updates"))
            out.append((f"rrc00/{ym}/bview.{ymd}.{hhmm}.gz", "rib"))
    return out


def make_tree(root: Path, *, months: int = 2, per_month: int = 2, real: bool = True) -> Tree:
    files: dict[str, Path] = {}
    for seed, (name, kind) in enumerate(synthetic_names(months, per_month), start=1):
        files[name] = synthetic_path(root, name, kind, seed)
    if real:
        for sample, name in REAL_FILES.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(shared_mrt_dir() / sample)
            files[name] = path
    # Things a backfill must ignore: notes, a partial file being written under a hidden name.
    (root / "README.txt").write_text("not an archive file\n")
    (
        root / "route-views.jinx" / "bgpdata" / "2024.01" / "UPDATES" / ".updates.20240101.0400.bz2.tmp"
    ).write_bytes(b"partial")
    return Tree(root, files)
