"""The whole report set (training artifacts and counterexample files included) is staged and swapped in at
once:
a killed or disk-full run leaves the previous set intact and no orphan files."""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROV = {"date": "x", "package": {"version": "0"}, "git": {"commit": "c"}, "device": "cpu"}


def _claim(cid, status="tested", **kw):
    from equivalence.claims import ClaimResult

    return ClaimResult(
        id=cid,
        title=cid,
        statement=f"statement of {cid}",
        kind=kw.pop("kind", "numeric"),
        status=status,
        **kw,
    )


def _old_set(out: Path) -> dict:
    """A previous report set with an artifact (as the training section writes one: into the staging
    folder)."""
    from equivalence.report.staging import stage_for
    from equivalence.report.write import write_report

    (stage_for(out) / "old_fig.png").write_bytes(b"old figure")
    write_report(
        [_claim("OLD/v1", kind="learned", status="empirical", evidence={"figures": ["old_fig.png"]})],
        out,
        provenance=PROV,
        command="old",
    )
    return _snapshot(out)


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


# the child writes a new set (an artifact staged first, as the training section does), says where it is, then
# blocks on stdin: the test kills it at that point, synchronised on the pipe (no sleep)
CHILD = r"""
import sys
from pathlib import Path
import equivalence.report.staging as staging
from equivalence.claims import ClaimResult
from equivalence.report.write import write_report

out, where = Path(sys.argv[1]), sys.argv[2]
stage = staging.stage_for(out)
(stage / "new_fig.png").write_bytes(b"new figure")
def block(d):
    print("staged", flush=True)
    sys.stdin.readline()
if where == "training":
    block(stage)
staging.before_swap = block
claim = ClaimResult(id="NEW/v1", title="new", statement="new", kind="learned", status="empirical",
                    evidence={"figures": ["new_fig.png"]})
write_report([claim], out, provenance={"date": "x", "package": {"version": "0"}, "git": {"commit": "c"},
             "device": "cpu"}, command="new")
print("done", flush=True)
"""


@pytest.mark.parametrize("where", ["training", "before-swap"])
def test_kill_9_leaves_the_previous_set_and_no_orphans(tmp_path, where):
    out = tmp_path / "reports"
    before = _old_set(out)
    siblings = _siblings(out)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), where],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as p:
        line = p.stdout.readline()
        assert line.strip() == "staged", p.stderr.read()
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    assert _snapshot(out) == before  # the previous set, byte for byte, and nothing of the new one
    from equivalence.commands.check_certificate import check_certificate

    assert check_certificate(out / "certificate.json", rerun=False, echo=[].append)
    assert len(_siblings(out)) == len(siblings) + 1  # the killed run's staging folder, hidden next to --out
    # the next run removes it: no orphans anywhere
    from equivalence.report.write import write_report

    write_report([_claim("NEXT/v1")], out, provenance=PROV, command="next")
    assert _siblings(out) == siblings
    assert sorted(_snapshot(out)) == [
        "certificate.json",
        "report.html",
        "report.md",
    ]  # old_fig.png went with its set


def test_a_completed_child_swaps_the_whole_set_in(tmp_path):
    out = tmp_path / "reports"
    _old_set(out)
    r = subprocess.run(
        [sys.executable, "-c", CHILD.replace("staging.before_swap = block", ""), str(out), "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert r.returncode == 0 and "done" in r.stdout, r.stderr
    assert sorted(_snapshot(out)) == ["certificate.json", "new_fig.png", "report.html", "report.md"]


def test_a_full_disk_leaves_the_previous_set_and_no_orphans(tmp_path, monkeypatch):
    from equivalence.report import write
    from equivalence.report.staging import StagingError

    out = tmp_path / "reports"
    (tmp_path / "reports").mkdir()
    (out / "my-notes.txt").write_text("the user's own file")
    before = _old_set(out)
    siblings = _siblings(out)
    real = write.atomic_write
    calls = []

    def full(path, data):
        calls.append(Path(path).name)
        if len(calls) == 3:  # the disk fills up while the set is being written
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(write, "atomic_write", full)
    failing = _claim("FAILING/v1", status="failed", counterexample={"case": 0})
    with pytest.raises(StagingError, match="No space left on device.*previous report set"):
        write.write_report([_claim("NEW/v1"), failing], out, provenance=PROV, command="new")
    assert _snapshot(out) == before and (out / "my-notes.txt").read_text() == "the user's own file"
    assert _siblings(out) == siblings  # no staging folder, no orphan artifact


def test_users_own_files_in_out_stay(tmp_path):
    from equivalence.report.write import write_report

    out = tmp_path / "reports"
    _old_set(out)
    (out / "my-notes.txt").write_text("mine")
    write_report([_claim("NEW/v1")], out, provenance=PROV, command="new")
    assert (out / "my-notes.txt").read_text() == "mine"
    assert "old_fig.png" not in _snapshot(out)


def test_out_with_subfolders_is_written_file_by_file(tmp_path):
    from equivalence.report.write import write_report

    out = tmp_path / "reports"
    _old_set(out)
    (out / "channel-decay").mkdir()
    (out / "channel-decay" / "certificate.json").write_text("{}")
    write_report([_claim("NEW/v1")], out, provenance=PROV, command="new")
    assert (out / "channel-decay" / "certificate.json").read_text() == "{}"
    assert sorted(p.name for p in out.iterdir()) == [
        "certificate.json",
        "channel-decay",
        "report.html",
        "report.md",
    ]
    assert _siblings(out) == []
