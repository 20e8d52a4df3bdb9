"""The output side of every command that writes files: a folder in the way, a missing folder, a read-only folder
and a full disk (/dev/full) each end in one line on stderr and exit code 2, checked before the work where the
check can see the problem, and never a traceback."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from _oracle import TruthOracle

from danmask import pipeline
from danmask.cli import main
from danmask.errors import OutputError
from danmask.outputs import check_file, check_folder, write_bytes
from danmask.synthetic import make_video

FULL_DISK = Path("/dev/full")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame clip with its true track and a comment file."""
    from danmask.track import MaskTrack

    folder = tmp_path_factory.mktemp("clip")
    video = make_video(folder / "clip.mp4", frames=12, shape=(48, 64))
    MaskTrack((48, 64), (48, 64), video.time_base, [m.astype("uint8") * 255 for m in video.masks],
              video.pts).save(folder / "clip.dmask")
    (folder / "c.xml").write_text('<i><d p="0.1,1,25,16777215">hello</d></i>', encoding="utf-8")
    return video


@pytest.fixture
def oracle(clip, monkeypatch):
    """Every model name resolves to the clip's truth oracle, so segmenting takes no time."""
    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: TruthOracle(clip))


def read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: chmod 555 for a normal user; root ignores modes, so /sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        (Path("/sys") / "danmask-probe").touch()
    except OSError:
        return Path("/sys")
    pytest.skip("running as root and /sys is writable: no read-only folder to test with")


def file_outputs(tmp_path: Path) -> dict[str, Path]:
    """Output files that cannot be written, by why."""
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    return {"folder in the way": tmp_path, "missing folder": blocker / "sub" / "out",
            "read-only folder": read_only_folder(tmp_path) / "out", "full disk": FULL_DISK}


def folder_outputs(tmp_path: Path) -> dict[str, Path]:
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    return {"file in the way": blocker, "under a file": blocker / "sub",
            "read-only folder": read_only_folder(tmp_path) / "out", "full disk": FULL_DISK}


def assert_one_line(capsys, code: int, command: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"danmask {command}: error:") and "Traceback" not in err, err
    return err


WHY = ["folder in the way", "missing folder", "read-only folder", "full disk"]


@pytest.mark.parametrize("why", WHY)
def test_segment(clip, oracle, tmp_path, capsys, why):
    out = file_outputs(tmp_path)[why]
    assert_one_line(capsys, main(["segment", str(clip.path), "-o", str(out), "-q"]), "segment")


@pytest.mark.parametrize("why", WHY)
def test_export_webmask(clip, tmp_path, capsys, why):
    out = file_outputs(tmp_path)[why]
    assert_one_line(capsys, main(["export", str(clip.path.with_suffix(".dmask")), "-f", "webmask", "-o", str(out)]),
                    "export")


@pytest.mark.parametrize("why", ["file in the way", "under a file", "read-only folder", "full disk"])
def test_export_png(clip, tmp_path, capsys, why):
    out = folder_outputs(tmp_path)[why]
    assert_one_line(capsys, main(["export", str(clip.path.with_suffix(".dmask")), "-f", "png", "-o", str(out)]),
                    "export")


@pytest.mark.parametrize("why", WHY)
def test_render(clip, tmp_path, capsys, why):
    out = file_outputs(tmp_path)[why]
    assert_one_line(capsys, main(["render", str(clip.path), "-c", str(clip.path.with_name("c.xml")),
                                  "-t", str(clip.path.with_suffix(".dmask")), "-o", str(out), "-q"]), "render")


def test_render_to_a_full_disk_fails_while_writing(clip, tmp_path, capsys):
    """/dev/full opens fine, so only the writes can tell (an .mp4 name for it, so the muxer knows the format)."""
    full = tmp_path / "full.mp4"
    full.symlink_to(FULL_DISK)
    assert_one_line(capsys, main(["render", str(clip.path), "-c", str(clip.path.with_name("c.xml")),
                                  "-t", str(clip.path.with_suffix(".dmask")), "-o", str(full), "-q"]), "render")
    assert FULL_DISK.exists()


@pytest.mark.parametrize("why", ["file in the way", "under a file", "read-only folder", "full disk"])
def test_demo_and_eval_folders(oracle, tmp_path, capsys, why):
    out = folder_outputs(tmp_path)[why]
    assert_one_line(capsys, main(["demo", "-o", str(out), "--clip", "carphone", "-q"]), "demo")
    assert_one_line(capsys, main(["eval", str(tmp_path), "-o", str(out), "-q"]), "eval")


@pytest.mark.parametrize("why", WHY[:3])  # /dev/full opens fine: the append's one-line error is eval.bench's
def test_bench_checks_its_file_before_running(tmp_path, capsys, why):
    out = file_outputs(tmp_path)[why]
    assert_one_line(capsys, main(["bench", "-o", str(out), "--synthetic", "--no-player", "--no-people"]), "bench")


def test_write_bytes_leaves_no_half_file_and_never_removes_a_device(tmp_path):
    with pytest.raises(OutputError, match="No space left"):
        write_bytes(FULL_DISK, b"x" * 100_000)
    assert FULL_DISK.exists()
    assert write_bytes(tmp_path / "ok.bin", b"abc") == 3 and (tmp_path / "ok.bin").read_bytes() == b"abc"


def test_checks_leave_nothing_behind_and_keep_existing_files(tmp_path):
    check_file(tmp_path / "new.dmask")
    assert not (tmp_path / "new.dmask").exists()
    (tmp_path / "old.dmask").write_bytes(b"keep")
    check_file(tmp_path / "old.dmask")
    assert (tmp_path / "old.dmask").read_bytes() == b"keep"
    assert check_folder(tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())


def test_segment_fails_before_segmenting(clip, tmp_path, capsys, monkeypatch):
    """A bad output is found before the (possibly hours-long) work starts."""
    def never(*args, **kwargs):
        raise AssertionError("the model was loaded although the output cannot be written")

    monkeypatch.setattr(pipeline, "load_model", never)
    assert_one_line(capsys, main(["segment", str(clip.path), "-o", str(tmp_path / "no" / "x.dmask")]), "segment")


@pytest.mark.train
@pytest.mark.parametrize("why", ["file in the way", "under a file", "full disk"])
def test_training_folders_are_checked_before_training(tmp_path, capsys, why):
    pytest.importorskip("torch")
    out = folder_outputs(tmp_path)[why]
    data, rvm = tmp_path / "data", tmp_path / "rvm.onnx"
    (data / "davis-people").mkdir(parents=True)
    rvm.write_bytes(b"")
    assert_one_line(capsys, main(["train", "labels", "--data", str(data), "--rvm", str(rvm), "-o", str(out), "-q"]),
                    "train")
    assert_one_line(capsys, main(["train", "fit", "--cache", str(data), "-o", str(out), "--steps", "1", "-q"]),
                    "train")
