"""The demo's carol crosses her 80 % budget threshold within ~15 s however fast the machine is.

Her prompts are sized by the time since her previous request, so her spend follows the clock; the
load is simulated here with request times of a fast and of a very slow machine (no sleeping), and
billed by the real hub with the demo's own key setup.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from fakeai_metrics import Telemetry
from fakeai_metrics.demo import (CAROL, CAROL_MODEL, CAROL_USD_PER_S, KEYS, _PROMPT_OVERHEAD,
                                 carol_prompt_words, setup_keys)
from fakeai_metrics.pricing import DEFAULT_PRICES


@pytest.mark.parametrize("gap", [0.01, 0.2, 1.0, 4.0])
def test_a_prompt_bills_the_rate_times_the_gap(gap):
    tokens = carol_prompt_words(gap) + _PROMPT_OVERHEAD
    cost = DEFAULT_PRICES[CAROL_MODEL].cost(tokens, 0)
    assert cost == pytest.approx(CAROL_USD_PER_S * gap, abs=DEFAULT_PRICES[CAROL_MODEL].input / 1e6)


@pytest.mark.parametrize("gaps", [[0.15] * 200,              # ~7 carol requests a second
                                  [3.0] * 10,                # a machine 20x slower
                                  [0.05, 2.5, 0.3, 4.9, 0.01] * 5],
                         ids=["fast", "slow", "irregular"])
def test_carol_crosses_80_percent_within_15_s(gaps):
    telemetry = Telemetry(registry=CollectorRegistry())
    setup_keys(telemetry)
    limit, start = KEYS[CAROL][1], KEYS[CAROL][2]
    assert start / limit < 0.8
    now = last = 0.0
    for gap in gaps:
        now += gap
        prompt = carol_prompt_words(now - last) + _PROMPT_OVERHEAD
        last = now
        telemetry.cost.record_usage(CAROL, CAROL_MODEL, "/v1/chat/completions", prompt, 0)
        if telemetry.cost.check_budget(CAROL)[0] >= 0.8 * limit:
            break
    assert telemetry.cost.check_budget(CAROL)[0] >= 0.8 * limit
    assert now <= 15.0
