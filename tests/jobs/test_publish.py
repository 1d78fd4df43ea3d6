"""A run handed to a publishing worker that then dies is logged exactly once."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
from mlflow.tracking import MlflowClient

from segexp.contract import TAG_PUBLISH_KEY
from segexp.jobs import publish as publishing
from segexp.tracking.store import RunRecord, tracker_for


@pytest.fixture
def request_for(store, monkeypatch):
    monkeypatch.setattr(publishing, "_BROKEN", False)  # result() marks this process's pool broken
    experiment_id = tracker_for(store).experiment_id("publish")

    def make(key: str, error: str | None = None) -> publishing.PublishRequest:
        record = RunRecord(
            "kmeans-k3", {"k": 3}, {"silhouette": 0.5}, {TAG_PUBLISH_KEY: key}, error=error
        )
        return publishing.PublishRequest(store, experiment_id, None, record)

    return make


def _died() -> Future:
    future: Future = Future()
    future.set_exception(BrokenProcessPool("a worker was killed"))
    return future


def _runs(request: publishing.PublishRequest):
    return MlflowClient(request.tracking_uri).search_runs([request.experiment_id])


@pytest.mark.parametrize("error", [None, "ValueError: the fit failed"])
def test_a_run_the_dead_worker_had_ended_is_not_logged_again(request_for, error):
    request = request_for("ended-by-the-worker", error)
    logged = publishing.publish(request)  # what the worker did before it was killed
    assert publishing.result(request, _died()) == logged
    (run,) = _runs(request)
    assert run.info.status == ("FINISHED" if error is None else "FAILED")


def test_a_run_the_dead_worker_had_not_logged_is_logged_here(request_for):
    other = request_for("another-run")
    publishing.publish(other)  # a run with another key is not taken for this one
    request = request_for("never-logged")
    run_id, error = publishing.result(request, _died())
    assert error is None
    runs = {r.info.run_id: r for r in _runs(request)}
    assert len(runs) == 2
    assert runs[run_id].data.tags[TAG_PUBLISH_KEY] == "never-logged"
    assert runs[run_id].info.status == "FINISHED"
