"""RotatingWriter on its own (scap/live/rotation.py): -G's switch on the clock, without events.

The live tests (test_live_read.py) run -C/-G/-W for real as root; these check, anywhere, that
a quiet machine still gets its files on time: the first at the start, the next on tick()."""
import time

from scaptool import scap
from scaptool.scap.live.rotation import RotatingWriter


def test_files_switch_on_the_clock_with_no_events(tmp_path):
    out = tmp_path / "quiet.scap"
    with RotatingWriter(str(out), seconds=0.05, count=2) as writer:
        assert writer.files == [f"{out}0"]       # opened at the start, before any event
        writer.tick()
        assert writer.files == [f"{out}0"]       # not due yet
        time.sleep(0.06)
        writer.tick()
        assert writer.files == [f"{out}0", f"{out}1"] and not writer.finished
        time.sleep(0.06)
        writer.tick()
        assert writer.finished
        writer.tick()                            # nothing more once finished
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiet.scap0", "quiet.scap1"]
    for name in writer.files:
        assert len(scap.open(name)) == 0   # valid captures, with no events


def test_size_rotation_does_not_switch_on_the_clock(tmp_path):
    with RotatingWriter(str(tmp_path / "s.scap"), size_mb=1) as writer:
        time.sleep(0.01)
        writer.tick()
        assert len(writer.files) == 1
