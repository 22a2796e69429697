"""Archive path rules: key validation, layout parsing and local-path cutting."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvcloud.metadata.archive_path import (
    ArchivePathInfo,
    InvalidKey,
    archive_path_from_local,
    parse_archive_path,
    validate_key,
    validate_project,
)

# ---- validate_key -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "bgpdata/2014.05/UPDATES/updates.20140501.0000.bz2",
        "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2",
        "rrc00/2001.01/updates.20010101.0000.gz",
        "odd+chars=ok@host,list_-x",
        ".hidden/..dots/...",  # dot segments other than '.' and '..' are plain names
        "x" * 1024,
    ],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("x" * 1025, "1025 bytes"),
        ("../x", "'..' segment"),
        ("a/../b", "'..' segment"),
        ("a/..", "'..' segment"),
        ("./a", "'.' segment"),
        ("a/./b", "'.' segment"),
        ("/etc/passwd", "leading '/'"),
        ("a//b", "empty segment"),
        ("a/", "trailing '/'"),
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("a\nb", "control character"),
        ("a\tb", "control character"),
        ("a\x00b", "control character"),
        ("a\x7f", "control character"),
        ("a b", "characters outside"),
        ("a:b", "characters outside"),
        ("a%2F", "characters outside"),
        ("über", "characters outside"),
        ("a?b", "characters outside"),
        ("\ud800", "not valid UTF-8"),
    ],
)
def test_invalid_keys(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason):
        validate_key(key)


def test_invalid_key_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_key("../x")


@given(st.text(alphabet=st.sampled_from(list("ab./\\-\n ")), max_size=20))
def test_valid_keys_stay_inside_a_directory(key: str) -> None:
    # Whatever is accepted joins to a path below the root.
    try:
        validate_key(key)
    except InvalidKey:
        return
    joined = posixpath.normpath(posixpath.join("/root", key))
    assert joined.startswith("/root/")
    assert joined == "/root/" + key


@pytest.mark.parametrize("p", ["routeviews", "ris", "a", "rv-2_x", "0" + "x" * 62])
def test_valid_projects(p: str) -> None:
    assert validate_project(p) == p


@pytest.mark.parametrize("p", ["", "RouteViews", "-rv", "_rv", "rv.x", "rv/x", "0" + "x" * 63, "rv "])
def test_invalid_projects(p: str) -> None:
    with pytest.raises(ValueError, match="invalid project"):
        validate_project(p)


# ---- parse_archive_path -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # route-views2 lives at the archive root ...
        (
            "bgpdata/2014.05/UPDATES/updates.20140501.0000.bz2",
            ArchivePathInfo("route-views2", "UPDATES", 1398902400),
        ),
        ("bgpdata/2014.05/RIBS/rib.20140530.2200.bz2", ArchivePathInfo("route-views2", "RIB", 1401487200)),
        # ... or under its name
        (
            "route-views2/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2",
            ArchivePathInfo("route-views2", "RIB", 1401487200),
        ),
        (
            "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2",
            ArchivePathInfo("route-views.jinx", "RIB", 1401487200),
        ),
        (
            "route-views.amsix/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2",
            ArchivePathInfo("route-views.amsix", "UPDATES", 1704067200),
        ),
        (
            "route-views3/bgpdata/2016.02/UPDATES/updates.20160229.1205.bz2",
            ArchivePathInfo("route-views3", "UPDATES", 1456747500),
        ),
        # RIS
        ("rrc00/2001.01/updates.20010101.0000.gz", ArchivePathInfo("rrc00", "UPDATES", 978307200)),
        ("rrc21/2002.07/bview.20020722.2337.gz", ArchivePathInfo("rrc21", "RIB", 1027381020)),
        # type from the directory when the name says nothing
        ("bgpdata/2014.05/UPDATES/u.bz2", ArchivePathInfo("route-views2", "UPDATES", None)),
        (
            "route-views6/bgpdata/2014.05/RIBS/x.20140530.2200",
            ArchivePathInfo("route-views6", "RIB", 1401487200),
        ),
        # unknown layouts
        ("somewhere/else/updates.20240101.0000.bz2", ArchivePathInfo("", "UPDATES", 1704067200)),
        ("rib.20140530.2200.bz2", ArchivePathInfo("", "RIB", 1401487200)),
        ("rrc1/2001.01/file", ArchivePathInfo("", "", None)),
        ("rrc00", ArchivePathInfo("", "", None)),
    ],
)
def test_parse_archive_path(path: str, expected: ArchivePathInfo) -> None:
    assert parse_archive_path("routeviews", path) == expected


@pytest.mark.parametrize(
    ("basename", "file_time"),
    [
        ("updates.20240101.0000.bz2", 1704067200),
        ("updates.20240101.0000", 1704067200),  # no compression suffix
        ("updates.20240101.000000.bz2", None),  # HHMMSS is not the RouteViews form
        ("updates.2024010.0000.bz2", None),
        ("updates.20241301.0000.bz2", None),  # month 13
        ("updates.20230229.0000.bz2", None),  # not a leap year
        ("updates.20240229.0000.bz2", 1709164800),  # leap year
        ("updates.20240101.2400.bz2", None),
        ("updates.20240101.0060.bz2", None),
        ("updates.bz2", None),
    ],
)
def test_file_time(basename: str, file_time: int | None) -> None:
    info = parse_archive_path("routeviews", "bgpdata/2024.01/UPDATES/" + basename)
    assert info.file_time == file_time


def test_parse_validates_inputs() -> None:
    with pytest.raises(InvalidKey):
        parse_archive_path("routeviews", "../bgpdata/x")
    with pytest.raises(ValueError, match="invalid project"):
        parse_archive_path("Route Views", "bgpdata/x")


# ---- archive_path_from_local --------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (
            "/srv/archive/route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2",
            "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2",
        ),
        ("/x/bgpdata/2014.05/UPDATES/u.bz2", "bgpdata/2014.05/UPDATES/u.bz2"),
        (
            "/x/route-views2/bgpdata/2014.05/UPDATES/u.bz2",
            "route-views2/bgpdata/2014.05/UPDATES/u.bz2",
        ),
        ("/x/rrc00/2001.01/updates.20010101.0000.gz", "rrc00/2001.01/updates.20010101.0000.gz"),
        ("relative/rrc12/2001.01/bview.20010101.0000.gz", "rrc12/2001.01/bview.20010101.0000.gz"),
        ("bgpdata/2014.05/RIBS/rib.20140530.2200.bz2", "bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"),
        # the directory nearest to the file wins
        ("/rrc00/mirror/route-views3/bgpdata/2020.01/RIBS/r", "route-views3/bgpdata/2020.01/RIBS/r"),
        ("/data/./route-views.sg/bgpdata/../bgpdata/2020.01/RIBS/r", "route-views.sg/bgpdata/2020.01/RIBS/r"),
    ],
)
def test_archive_path_from_local(local: str, expected: str) -> None:
    assert archive_path_from_local(local) == expected
    assert parse_archive_path("routeviews", expected).collector != ""


@pytest.mark.parametrize(
    "local",
    [
        "/tmp/updates.20240101.0000.bz2",
        "/srv/archive/some/dir/file",
        "bgpdata",  # the basename alone is not a directory
        "/x/rrc00",
        "/x/bgpdata/2014.05/bad name.bz2",  # valid layout, invalid key
    ],
)
def test_archive_path_from_local_rejects(local: str) -> None:
    with pytest.raises(ValueError):
        archive_path_from_local(local)
