"""The Ray executor: the same tickets as the local executor, on one local Ray runtime."""

import numpy as np
import pytest

import ticketlab
from ticketlab.study import Study, StudySpec

pytestmark = pytest.mark.xdist_group("ray")

SPEC = {"name": "r", "model": "lenet_300_100", "dataset": "digits", "seeds": [0, 1], "densities": [0.1],
        "methods": ["random", "synflow", "imp"], "method": {"imp": {"rounds": 2}, "synflow": {"rounds": 3}},
        "train": {"epochs": 1}}


def test_ray_and_local_executors_give_identical_tickets(tmp_path, ray_local):
    spec = StudySpec.from_dict(SPEC)
    local = Study(spec, tmp_path / "local").run()
    remote = Study(spec, tmp_path / "ray").run(executor="ray", jobs=2)
    assert [j["status"] for j in local["jobs"]] == [j["status"] for j in remote["jobs"]] == ["done"] * 6
    for job in local["jobs"]:
        a = ticketlab.load(tmp_path / "local" / job["output"])
        b = ticketlab.load(tmp_path / "ray" / job["output"])
        for n in a.masks:
            assert np.array_equal(a.masks[n], b.masks[n]), (job["id"], n)
            for kind in a.weights:
                assert np.array_equal(a.weights[kind][n], b.weights[kind][n]), (job["id"], kind, n)
    again = Study(spec, tmp_path / "ray").run(executor="ray")
    assert {j["status"] for j in again["jobs"]} == {"skipped"}
