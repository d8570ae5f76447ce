"""A fast version of each many-seed monitoring check (make validate runs 10 seeds).

Each scenario trains real models on a synthetic history and runs the monitoring code the
server runs, weekly; the assertions are the issue's acceptance criteria on one seed.
"""

from __future__ import annotations

import pytest

from validation import monitoring as v

SEED = 2


@pytest.mark.parametrize("name", ["stable", "covariate", "concept", "bad_model",
                                  "better_challenger", "flapping", "small"])
def test_scenario_meets_its_acceptance_criterion(name):
    weeks = {"concept": 16, "bad_model": 9, "better_challenger": 12, "covariate": 12,
             "small": 10}.get(name, v.MONITOR_WEEKS)
    result = v.simulate(v.SCENARIOS[name](), SEED, weeks=weeks)
    figures = v.check(name, [result])
    assert figures["passed"], figures
