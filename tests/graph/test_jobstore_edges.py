"""The job store under hostile or damaged input: a job id from the command line never
names a path outside the jobs root, and a damaged job record is one clear error naming
the file, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import JobError, JobNotFound
from orchestrator.jobstore import JobRecord, jobs_root, list_jobs, load_job, new_job_id
from tests.cli_helpers import run_cli


@pytest.mark.parametrize("job_id", ["../outside", "../../outside", "a/../../outside", "/tmp",
                                    ".", "..", "*", "", "a b"])
def test_an_id_that_is_a_path_names_no_job(tmp_path: Path, job_id: str) -> None:
    # A record that the traversal would reach: it must never be read.
    JobRecord(job_id=new_job_id(), repo=str(tmp_path), task="t").save()
    outside = jobs_root().parent / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "job.json").write_text(json.dumps({"job_id": "x", "repo": "/r", "task": "t"}))
    with pytest.raises(JobNotFound):
        load_job(job_id)


def test_show_of_a_path_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    JobRecord(job_id=new_job_id(), repo=str(tmp_path), task="t").save()
    outside = jobs_root().parent / "evil"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "job.json").write_text(json.dumps({"job_id": "x", "repo": "/r", "task": "t"}))
    code, out, err = run_cli(capsys, "show", "../evil")
    assert code == 2 and out == ""
    assert err.startswith("tandem: error: '../evil' is not a job id") and err.count("\n") == 1


def test_a_damaged_record_is_one_clear_error(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    good = JobRecord(job_id=new_job_id(), repo=str(tmp_path), task="good", status="done")
    good.save()
    torn = JobRecord(job_id=good.job_id[:-1] + "z", repo=str(tmp_path), task="torn")
    torn.save()
    path = torn.dir / "job.json"
    path.write_text(path.read_text()[:40])  # a write cut short
    with pytest.raises(JobError, match=r"job record .*job\.json is unreadable"):
        load_job(torn.job_id)
    code, _, err = run_cli(capsys, "show", torn.job_id)
    assert code == 2 and err.count("\n") == 1 and str(path) in err
    assert "Traceback" not in err
    # The listing still shows the other jobs.
    assert [j.job_id for j in list_jobs()] == [good.job_id]
    path.write_text(json.dumps({"job_id": torn.job_id}))  # valid JSON, not a record
    with pytest.raises(JobError, match="unreadable"):
        load_job(torn.job_id)
