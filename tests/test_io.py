"""Atomic writes: nothing half-written survives a failure."""
import json
import os
import stat

import pytest

from clusterbench import io


def test_atomic_path_leaves_no_file_when_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_previous_version_on_failure(tmp_path):
    target = tmp_path / "out.json"
    io.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("{broken")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"v": 1}


def test_atomic_dir_replaces_whole_directory_only_on_success(tmp_path):
    target = tmp_path / "run"
    with io.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError):
        with io.atomic_dir(target) as tmp:
            (tmp / "b.txt").write_text("2")
            raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with io.atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]


def test_npz_and_json_round_trip(tmp_path):
    import numpy as np

    io.write_npz(tmp_path / "x.npz", a=np.arange(3), b=np.eye(2))
    back = io.read_npz(tmp_path / "x.npz")
    assert back["a"].tolist() == [0, 1, 2] and back["b"].tolist() == [[1, 0], [0, 1]]
    io.write_json(tmp_path / "x.json", {"n": np.int64(3), "f": np.float32(0.5)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"f": 0.5, "n": 3}


def test_a_killed_stage_leaves_no_temporary_directory(tmp_path):
    """SIGTERM (a scheduler, a CI timeout) must unwind like Ctrl-C: no `.part` folder survives."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "stage.py"
    script.write_text(
        "import sys, time\n"
        "from clusterbench import config, io\n"
        "@config.main_guard\n"
        "def main():\n"
        f"    with io.atomic_dir({str(tmp_path / 'out')!r}) as tmp:\n"
        "        (tmp / 'half.npz').write_text('half')\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "main()\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert any(p.name.endswith(".part") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert not (tmp_path / "out").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_atomic_outputs_get_the_modes_open_and_mkdir_would_give(tmp_path, umask_022):
    """mkstemp/mkdtemp make 0600/0700: a shared DVC cache or another user could not read those."""
    io.write_json(tmp_path / "a.json", {"v": 1})
    with io.atomic_dir(tmp_path / "run") as tmp:
        io.write_npz(tmp / "predictions.npz", labels=[0, 1])
        (tmp / "plain.txt").write_text("x")
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == 0o644
    assert mode(tmp_path / "run") == 0o755
    assert mode(tmp_path / "run" / "predictions.npz") == 0o644 and mode(tmp_path / "run" / "plain.txt") == 0o644
    os.umask(0o077)
    io.write_text(tmp_path / "private.txt", "x")
    assert mode(tmp_path / "private.txt") == 0o600  # the umask is honoured, not overridden


def test_stale_part_leftovers_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    (tmp_path / ".run.k3j2x_9a.part").mkdir()  # what a SIGKILLed atomic_dir leaves
    (tmp_path / ".run.k3j2x_9a.part" / "half.npz").write_text("half")
    (tmp_path / ".run.old").mkdir()
    (tmp_path / ".out.json.abcd1234.part").write_text("{half")
    keep = [".run.json.abcd1234.part", ".runner.abcd1234.part", "run.txt"]  # other targets' files
    for name in keep:
        (tmp_path / name).write_text("other")
    with io.atomic_dir(tmp_path / "run") as tmp:
        (tmp / "a.txt").write_text("1")
    io.write_json(tmp_path / "out.json", {"v": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + ["out.json", "run"])


def test_a_sigkilled_run_leaves_nothing_in_the_runs_folder(tmp_path):
    """kill -9 cannot be caught: what the killed writer leaves must lie outside data/<profile>/runs
    (score, figures and the leaderboard hash that folder as a whole, and DVC restoring the run from
    its run-cache would never clean it); the next write of the run removes it."""
    import signal
    import subprocess
    import sys

    runs = tmp_path / "data" / "smoke" / "runs"
    script = tmp_path / "stage.py"
    script.write_text(
        "import os, signal\n"
        "from clusterbench import io\n"
        f"with io.atomic_dir({str(runs / 'smoke-x')!r}) as tmp:\n"
        "    (tmp / 'seed-0').mkdir()\n"
        "    io.write_npz(tmp / 'predictions.npz', labels=[0, 1])\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    repo_root = str(io.Path(__file__).resolve().parents[1])   # this checkout's clusterbench, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo_root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], env=env)
    assert proc.returncode == -signal.SIGKILL
    assert list(runs.iterdir()) == []
    left = [p.name for p in (tmp_path / "data" / "smoke" / io.SCRATCH).iterdir()]
    assert len(left) == 1 and left[0].startswith(".smoke-x.") and left[0].endswith(".part")
    (runs / ".smoke-x.legacy1.part").mkdir()   # where temporaries were made before
    with io.atomic_dir(runs / "smoke-x") as tmp:
        assert tmp.parent == tmp_path / "data" / "smoke" / io.SCRATCH
        (tmp / "run.json").write_text("{}")
    assert [p.name for p in runs.iterdir()] == ["smoke-x"]
    assert list((tmp_path / "data" / "smoke" / io.SCRATCH).iterdir()) == []


def test_views_and_graphs_are_written_through_the_profile_scratch_folder(tmp_path):
    views = tmp_path / "smoke" / "views"
    with io.atomic_path(views / "v.npz") as tmp:
        assert tmp.parent == tmp_path / "smoke" / io.SCRATCH and tmp.name.startswith(".v.npz.")
        tmp.write_text("x")
    assert [p.name for p in views.iterdir()] == ["v.npz"]
    assert io.temp_home(tmp_path / "reports" / "a.json") == tmp_path / "reports"   # elsewhere: beside the file


def test_checkpoints_of_a_run_written_in_the_scratch_folder(tmp_path):
    scratch_seed = tmp_path / "data" / "smoke" / io.SCRATCH / ".smoke-cc-x.ab12.part" / "seed-1"
    assert io.checkpoint_dir_of(scratch_seed) == tmp_path / "data" / "smoke" / "checkpoints" / "smoke-cc-x" / "seed-1"


def test_dvc_ignores_what_a_killed_writer_leaves():
    """A leftover from before temporaries moved out of runs/ must not change a folder's hash either."""
    from dvc.repo import Repo

    repo_root = io.Path(__file__).resolve().parents[1]
    with Repo(str(repo_root)) as repo:
        ignored = lambda rel: repo.dvcignore.is_ignored_file(str(repo_root / rel))  # noqa: E731
        assert ignored("data/smoke/runs/.smoke-x.k3j2x_9a.part")
        assert ignored("data/smoke/views/.v.npz.old")
        assert not ignored("data/smoke/runs/smoke-x")
