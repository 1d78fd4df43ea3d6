"""A sweep's outcomes read back from the store when a worker died while logging a run."""

from __future__ import annotations

import pytest

from segexp.contract import TAG_ERROR, TAG_JOB_NUM, TAG_KIND, TAG_SWEEP_ID
from segexp.jobs.outcomes import SweepContext
from segexp.jobs.summary import sweep_outcomes
from segexp.tracking.store import Tracker


@pytest.mark.parametrize("cut_off_status", ["RUNNING", "KILLED"])
def test_a_run_logged_again_counts_once_and_its_cut_off_copy_says_why(store, cut_off_status):
    """The cut-off copy is still RUNNING, or was ended KILLED (without an error tag) by the
    store's check for runs of gone processes: either way the job is one finished outcome."""
    tracker = Tracker(store)
    experiment = tracker.experiment_id("outcomes")
    parent = tracker.start_run(experiment, "sweep", {TAG_KIND: "sweep", TAG_SWEEP_ID: "s1"})
    tags = {TAG_KIND: "job", TAG_SWEEP_ID: "s1", TAG_JOB_NUM: "0"}
    cut_off = tracker.start_run(experiment, "kmeans-k3", tags, parent)
    if cut_off_status == "KILLED":
        tracker.end_run(cut_off, "KILLED")
    again = tracker.start_run(experiment, "kmeans-k3", tags, parent)
    tracker.end_run(again, "FINISHED")

    outcomes = sweep_outcomes(tracker, SweepContext("s1", store, experiment, parent))

    assert [(o.status, o.run_id) for o in outcomes] == [("finished", again)]
    copy = tracker.client.get_run(cut_off)
    assert copy.info.status == ("FAILED" if cut_off_status == "RUNNING" else "KILLED")
    assert f"logged again as run {again}" in copy.data.tags[TAG_ERROR]


def test_a_failed_run_without_an_error_tag_is_a_failed_outcome_named_by_its_status(store):
    tracker = Tracker(store)
    experiment = tracker.experiment_id("outcomes")
    parent = tracker.start_run(experiment, "sweep", {TAG_KIND: "sweep", TAG_SWEEP_ID: "s2"})
    tags = {TAG_KIND: "job", TAG_SWEEP_ID: "s2", TAG_JOB_NUM: "0"}
    killed = tracker.start_run(experiment, "gmm-k3", tags, parent)
    tracker.end_run(killed, "KILLED")

    (outcome,) = sweep_outcomes(tracker, SweepContext("s2", store, experiment, parent))

    assert (outcome.status, outcome.message) == ("failed", "KILLED")
