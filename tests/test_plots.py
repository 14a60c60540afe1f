"""`scaptool plot` and scaptool.plots: the HTML opens in a real headless Chromium with no
console message and draws something; PNG and SVG are drawn without a browser; the timeline
of the seed story centres on the log line and shows what the threads did."""
import pathlib
import struct
import subprocess
import sys
import zlib

import pytest

from conftest import require_tool
from scaptool import plots

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
LIVE = FIXTURES / "php-database-error-live.scap"
SCAPTOOL = [sys.executable, "-m", "scaptool"]
DATABASE_ERROR = "evt.buffer contains 'Database error' and fd.name contains app.log"
# how the machine's guide starts Chromium headless on this closed network
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                  "--v=0", "--virtual-time-budget=10000", "--window-size=1400,900"]


def plot(*args):
    done = subprocess.run([*SCAPTOOL, "plot", *map(str, args)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def png_pixels(path):
    """(width, height, the decompressed scanlines) of a PNG: enough to tell blank from drawn
    without an image library."""
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, size = 8, b"", None
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    return size[0], size[1], zlib.decompress(idat)


def drawn(path):
    """Is there more on the picture than a background? (share of bytes that are not white)"""
    _, _, pixels = png_pixels(path)
    return sum(1 for b in pixels[::7] if b < 200) / len(pixels[::7])


@pytest.mark.parametrize("kind", plots.KINDS)
def test_html_opens_in_chromium_without_a_console_message(tmp_path, kind):
    chromium = require_tool("chromium")
    page = tmp_path / f"{kind}.html"
    plot(kind, LIVE, "-o", page)
    assert "cdn.jsdelivr" not in page.read_text()   # its scripts inside: it opens offline
    shot = tmp_path / "shot.png"
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert shot.exists(), done.stderr[-2000:]
    assert drawn(shot) > 0.01


@pytest.mark.parametrize("kind", plots.KINDS)
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_png_and_svg_without_a_browser(tmp_path, kind, suffix):
    out = tmp_path / f"{kind}{suffix}"
    plots.save(getattr(plots, kind)(LIVE), out)   # (the command line's path: the HTML test)
    if suffix == ".png":
        width, height, _ = png_pixels(out)
        assert width > 800 and height > 100
        assert drawn(out) > 0.01
    else:
        text = out.read_text()
        assert text.startswith("<svg") and text.count("<path") > 10


def test_the_timeline_of_the_seed_story():
    """Around PHP's 'Database error': its thread, curl's and MariaDB's lanes; the log lines
    as markers with their text; the match at 0 in a window of ±window_ms."""
    chart = plots.timeline(LIVE, around=DATABASE_ERROR, window_ms=5).to_dict()
    data = chart["datasets"]
    calls = max(data.values(), key=len)
    lanes = {row["thread"] for row in calls}
    assert {"php (1798)", "curl (1817)", "mariadbd (1794)"} <= lanes
    lines = [row["line"] for rows in data.values() for row in rows if "line" in row]
    assert any("Database error" in line for line in lines)
    rules = [rows for rows in data.values() if rows and set(rows[0]) == {"end_ms"}]
    assert rules == [[{"end_ms": 0.0}]]
    domain = chart["layer"][0]["encoding"]["x"]["scale"]["domain"]
    assert domain[0] == -5.0 and domain[1] >= 5.0
    failed = [row for row in calls if row["evt.failed"]]
    assert failed and all(row["evt.res"] for row in failed)


def test_io_and_latency_sum_before_drawing(tmp_path):
    import scaptool
    chart = plots.io(LIVE).to_dict()
    over_time = chart["vconcat"][0]
    rows = chart["datasets"][over_time["data"]["name"]]
    moved = scaptool.frame(LIVE, ["evt.rawres"], "evt.dir=< and (evt.is_io_read=true or "
                           "evt.is_io_write=true) and evt.rawres>0")
    assert sum(r["bytes"] for r in rows) == moved["evt.rawres"].sum()
    heat = plots.latency(LIVE).to_dict()
    cells = heat["datasets"][heat["data"]["name"]]
    assert sum(c["calls"] for c in cells) == \
        scaptool.frame(LIVE, ["evt.num"], "evt.dir=< and evt.latency>0").height
    assert len(cells) <= plots.TIME_BINS * 10


def test_too_many_calls_for_a_timeline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "MAX_TIMELINE_CALLS", 10)
    with pytest.raises(plots.PlotError, match="too many to draw one by one"):
        plots.timeline(LIVE)


@pytest.mark.parametrize("args, says", [
    (["timeline", LIVE, "-o", "{tmp}/x.gif"], "cannot tell what to draw from the name"),
    (["io", LIVE, "-o", "{tmp}/x.png", "--around", "proc.name=php"], "--around draws a timeline"),
    (["timeline", LIVE, "-o", "{tmp}/x.png", "--around", "proc.name=nobody"],
     "nothing matches --around"),
    (["latency", LIVE, "-o", "{tmp}/x.png", "evt.type=="], "filter: expected a value"),
    (["latency", "{tmp}/missing.scap", "-o", "{tmp}/x.png"], "missing.scap: no such file"),
])
def test_bad_requests_are_one_line(tmp_path, args, says):
    done = subprocess.run([*SCAPTOOL, "plot", *[str(a).format(tmp=tmp_path) for a in args]],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("x.*"))
