"""One way to write files and folders atomically (``neuroner_tl.atomic``): a failed write leaves the
old version and no temporary; a temporary of a writer that died is removed by the next write."""

import subprocess
import sys

import pytest

from neuroner_tl.atomic import (atomic_write_bytes, atomic_write_folder, atomic_write_text, atomic_writer,
                                staging_folder, temporary_for)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_write_replaces_the_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    atomic_write_text(target, "new\n")
    atomic_write_bytes(tmp_path / "image.png", b"\x89PNG")
    assert target.read_text() == "new\n" and (tmp_path / "image.png").read_bytes() == b"\x89PNG"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("binary", [False, True])
def test_a_failed_write_leaves_the_target_untouched_and_no_temporary(tmp_path, binary):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_writer(target, binary=binary) as stream:
            stream.write(b"half" if binary else "half")
            assert temporary_for(target).exists()
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_a_failed_folder_write_leaves_the_folder_untouched_and_no_temporary(tmp_path):
    folder = tmp_path / "brat"
    atomic_write_folder(folder, {"a.txt": "old"})
    with pytest.raises(KeyboardInterrupt):
        with staging_folder(folder) as staging:
            (staging / "a.txt").write_text("new")
            raise KeyboardInterrupt
    assert [p.name for p in folder.iterdir()] == ["a.txt"] and (folder / "a.txt").read_text() == "old"
    assert leftovers(tmp_path) == []
    atomic_write_folder(folder, {"b.txt": "new"})
    assert [p.name for p in folder.iterdir()] == ["b.txt"], "an existing folder is replaced whole"
    assert leftovers(tmp_path) == []


def test_stale_temporaries_of_a_dead_writer_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "out.txt"
    dead = dead_pid()
    stale_file = tmp_path / f".out.txt.{dead}.tmp"
    stale_file.write_text("half")
    stale_folder = tmp_path / f".out.txt.{dead}.old.tmp"
    stale_folder.mkdir()
    (stale_folder / "x").write_text("x")
    live = tmp_path / f".out.txt.{subprocess.os.getppid()}.tmp"  # pytest's parent still runs
    live.write_text("someone else's")
    other = tmp_path / f".other.txt.{dead}.tmp"
    other.write_text("not ours")
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert not stale_file.exists() and not stale_folder.exists()
    assert live.exists() and other.exists()


def test_numpy_writes_through_the_stream(tmp_path):
    """How the weights of a checkpoint are written (``model.save_weights``): no temporary is left behind."""
    np = pytest.importorskip("numpy")
    with atomic_writer(tmp_path / "w.npz", binary=True) as stream:
        np.savez(stream, a=np.arange(3))
    assert list(np.load(tmp_path / "w.npz")["a"]) == [0, 1, 2]
    assert leftovers(tmp_path) == []


def test_a_folder_set_aside_by_a_writer_that_died_is_put_back_not_removed(tmp_path):
    """Killed between its two renames, a writer leaves the old folder only as ``.NAME.PID.old.tmp``:
    the next write puts it back first (then replaces it whole), so the old output is never lost."""
    dead = dead_pid()
    folder = tmp_path / "out"
    retired = tmp_path / f".out.{dead}.old.tmp"
    retired.mkdir()
    (retired / "doc.txt").write_text("the old document\n")
    stale = tmp_path / f".out.{dead}.tmp"
    stale.mkdir()
    from neuroner_tl.atomic import remove_stale_temporaries

    remove_stale_temporaries(folder, put_back=True)
    assert (folder / "doc.txt").read_text() == "the old document\n" and leftovers(tmp_path) == []
    atomic_write_folder(folder, {"doc.txt": "new\n"})
    assert (folder / "doc.txt").read_text() == "new\n" and leftovers(tmp_path) == []
