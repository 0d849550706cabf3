"""The worker labels what it stores: the recorded sha256 and size describe the labelled bytes,
and with AIGC_EXPLICIT_LABELS text starts with its visible label."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aigc.labels import LabelSigner, LayerStatus, verify
from models.base import Artifact
from tests.unit.fakes import (
    FAKE_REVISION,
    TEST_LABEL_KEY,
    FakeGenerator,
    FakeJobStore,
    make_runtime,
)
from workers import explicit_labels
from workers.execution import execute_jobs
from workers.explicit_labels import TEXT_PREFIX


@pytest.mark.parametrize("explicit", [False, True])
def test_stored_text_is_described_and_labelled(tmp_path: Path, explicit: bool) -> None:
    jobs = FakeJobStore()
    job_id = jobs.add("words", max_new_tokens=2)
    runtime = make_runtime(tmp_path, jobs, FakeGenerator(), explicit_labels=explicit)
    assert execute_jobs(runtime, [job_id]) == {"succeeded": 1}

    [artifact] = jobs.jobs[job_id].artifacts
    data = (tmp_path / "artifacts" / artifact.storage_key).read_bytes()
    assert (artifact.size_bytes, artifact.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert data.decode().startswith(TEXT_PREFIX) == explicit
    assert artifact.facts["characters"] == len(data.decode())
    sidecar = (tmp_path / "artifacts" / f"{artifact.storage_key}.label.json").read_bytes()
    signer = LabelSigner(TEST_LABEL_KEY, "aigc-jobs")
    report = verify(data, signer, filename="a.txt", sidecar=sidecar)
    assert report.status == LayerStatus.VALID
    assert report.label is not None
    assert (report.label.content_id, report.label.job_id) == (str(artifact.id), str(job_id))
    assert report.label.team_id == str(jobs.jobs[job_id].team_id)
    # The label names the weights the job recorded for its provenance.
    assert report.label.model_revision == jobs.jobs[job_id].model_revision == FAKE_REVISION


def test_an_output_that_cannot_be_labelled_fails_its_job_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = FakeJobStore()
    bad, good = jobs.add("bad", max_new_tokens=1), jobs.add("good", max_new_tokens=1)
    real_mark = explicit_labels.mark

    def mark(artifact: Artifact) -> Artifact:
        if artifact.data.startswith(b"BAD"):  # the fake generator upper-cases
            raise UnicodeDecodeError("utf-8", b"", 0, 1, "not text")
        return real_mark(artifact)

    monkeypatch.setattr(explicit_labels, "mark", mark)
    runtime = make_runtime(tmp_path, jobs, FakeGenerator(), explicit_labels=True)
    assert execute_jobs(runtime, [bad, good]) == {"failed": 1, "succeeded": 1}
    assert jobs.jobs[bad].artifacts == [] and len(jobs.jobs[good].artifacts) == 1
