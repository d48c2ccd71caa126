"""The pure decision logic of rollouts: the one-sided always-valid guardrail test, the canary's
verdict, Thompson sampling and the weight floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ab_testing.rollouts import bandit, canary
from ab_testing.rollouts.canary import decide, guardrail_check, one_sided_p_value
from ab_testing.stats import MeanStats, RatioStats
from ab_testing.stats import sequential as seq
from scipy import integrate, stats

LATENCY = {"name": "latency_ms", "type": "continuous", "direction": "lower"}
CONVERSION = {"name": "conversion", "type": "binary", "direction": "higher", "zero_fill": True}


# ---- the one-sided mixture SPRT ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("b", "v", "tau2"), [(0.5, 0.04, 0.3), (-0.2, 0.01, 0.05), (3.0, 1.0, 2.0), (0.0, 0.5, 0.5)]
)
def test_one_sided_p_value_is_the_inverse_half_normal_mixture_likelihood_ratio(
    b: float, v: float, tau2: float
) -> None:
    # Λ⁺ = ∫₀^∞ N(b; δ, V) / N(b; 0, V) · 2·N(δ; 0, τ²) dδ, integrated numerically
    def integrand(delta: float) -> float:
        lr = math.exp((delta * b - delta * delta / 2) / v)
        return lr * 2 * stats.norm.pdf(delta, scale=math.sqrt(tau2))

    lam, _ = integrate.quad(integrand, 0, np.inf)
    assert one_sided_p_value(b, v, tau2) == pytest.approx(min(1.0, 1 / lam), rel=1e-6)


def test_one_sided_p_value_is_at_most_the_two_sided_one_in_the_bad_direction_and_1_in_the_good() -> None:
    v, tau2 = 0.02, 0.1
    for b in (0.3, 0.5, 1.0):
        two_sided = seq.always_valid_p_value(b, v, tau2)
        assert one_sided_p_value(b, v, tau2) < two_sided
        assert one_sided_p_value(b, v, tau2) >= two_sided / 2
        assert one_sided_p_value(-b, v, tau2) == 1.0
    assert one_sided_p_value(0.1, 0.0, tau2) == 0.0
    assert one_sided_p_value(-0.1, 0.0, tau2) == 1.0


def test_one_sided_test_keeps_its_level_however_often_it_looks() -> None:
    """A/A: 2000 simulated canaries, each looked at after every 25 units up to 1000 per arm; the share
    that ever flags a regression stays below alpha (a fixed-horizon test looked at this often would
    flag several times alpha)."""
    rng = np.random.default_rng(7)
    sims, looks, step, alpha = 2000, 40, 25, 0.05
    a = rng.normal(100, 15, size=(sims, looks * step))
    b = rng.normal(100, 15, size=(sims, looks * step))
    flagged = np.zeros(sims, dtype=bool)
    naive = np.zeros(sims, dtype=bool)
    tau2 = seq.mixing_variance(2 * 15.0**2, 200, alpha)
    for k in range(1, looks + 1):
        n = k * step
        d = b[:, :n].mean(axis=1) - a[:, :n].mean(axis=1)
        var = b[:, :n].var(axis=1, ddof=1) / n + a[:, :n].var(axis=1, ddof=1) / n
        p = np.array([one_sided_p_value(float(x), float(y), tau2) for x, y in zip(d, var, strict=True)])
        flagged |= p < alpha
        naive |= d / np.sqrt(var) > stats.norm.ppf(1 - alpha)
    assert flagged.mean() < alpha
    assert naive.mean() > 2 * alpha


def test_guardrail_check_flags_a_slower_candidate_and_not_a_faster_one() -> None:
    rng = np.random.default_rng(1)
    base = MeanStats.from_values(rng.normal(100, 10, 300))
    slow = MeanStats.from_values(rng.normal(110, 10, 300))
    fast = MeanStats.from_values(rng.normal(90, 10, 300))
    bad = guardrail_check(LATENCY, base, slow, alpha=0.05, min_samples=100)
    assert bad["regression"] and bad["testable"] and bad["p_value"] < 1e-6
    assert bad["bad_direction"] == "increase" and bad["abs_lift"] > 0
    assert bad["baseline"]["n"] == 300 and bad["candidate"]["mean"] > bad["baseline"]["mean"]
    assert bad["sequential_two_sided"]["p_value"] >= bad["p_value"]
    good = guardrail_check(LATENCY, base, fast, alpha=0.05, min_samples=100)
    assert not good["regression"] and good["p_value"] == 1.0
    # the primary metric is compared but never decides
    primary = guardrail_check(LATENCY, base, slow, alpha=0.05, min_samples=100, role="primary")
    assert primary["p_value"] < 1e-6 and not primary["regression"]


def test_guardrail_check_on_binary_and_ratio_metrics_and_too_few_units() -> None:
    worse = guardrail_check(
        CONVERSION, MeanStats(2000, 400, 400), MeanStats(2000, 300, 300), alpha=0.05, min_samples=200
    )
    assert worse["regression"] and worse["bad_direction"] == "decrease"
    ratio = {"name": "ctr", "type": "ratio", "direction": "higher"}
    r = np.random.default_rng(2)
    views = r.integers(1, 20, 500).astype(float)
    same = guardrail_check(
        ratio,
        RatioStats.from_values(r.binomial(views.astype(int), 0.1), views),
        RatioStats.from_values(r.binomial(views.astype(int), 0.1), views),
        alpha=0.05,
        min_samples=200,
    )
    assert same["testable"] and not same["regression"]
    few = guardrail_check(
        LATENCY,
        MeanStats.from_values([1.0] * 5),
        MeanStats.from_values([9.0] * 5),
        alpha=0.05,
        min_samples=200,
    )
    assert not few["testable"] and not few["regression"] and few["min_units"] == 20


# ---- the canary's verdict ---------------------------------------------------------------------------
def _decide(**overrides: object) -> canary.Verdict:
    args: dict = {
        "percent": 10.0,
        "is_last_below_full": False,
        "elapsed_seconds": 100.0,
        "stage_seconds": 60.0,
        "exposures": (500, 500),
        "min_samples": 200,
        "checks": [{"metric": "latency_ms", "role": "guardrail", "testable": True, "regression": False}],
    }
    return decide(**(args | overrides))


def test_decide() -> None:
    assert _decide().action == "advance"
    assert _decide(is_last_below_full=True).action == "promote"
    assert _decide(percent=100.0).action == "promote"
    held = _decide(elapsed_seconds=10.0, exposures=(500, 20))
    assert held.action == "hold" and held.reasons == ["stage_time", "min_samples"]
    untestable = [{"metric": "latency_ms", "role": "guardrail", "testable": False, "regression": False}]
    assert _decide(checks=untestable).reasons == ["untestable:latency_ms"]
    # a primary metric never holds nor rolls back
    primary = [{"metric": "conversion", "role": "primary", "testable": False, "regression": False}]
    assert _decide(checks=primary).action == "advance"
    # a regression rolls back at once, whatever the time and the samples
    regressed = [{"metric": "latency_ms", "role": "guardrail", "testable": True, "regression": True}]
    rollback = _decide(checks=regressed, elapsed_seconds=0.0, exposures=(30, 30))
    assert rollback.action == "rollback" and rollback.reasons == ["guardrail regression: latency_ms"]


# ---- Thompson sampling ------------------------------------------------------------------------------
def test_floor_weights() -> None:
    assert bandit.floor_weights([0.99, 0.01], 0.05) == pytest.approx([0.95, 0.05])
    assert bandit.floor_weights([0.5, 0.3, 0.2], 0.05) == pytest.approx([0.5, 0.3, 0.2])  # no floor binds
    w = bandit.floor_weights([0.97, 0.02, 0.01, 0.0], 0.1)
    assert w == pytest.approx([0.7, 0.1, 0.1, 0.1])
    # proportions among the arms above the floor are kept
    w = bandit.floor_weights([0.6, 0.39, 0.01], 0.1)
    assert sum(w) == pytest.approx(1.0) and w[2] == pytest.approx(0.1)
    assert w[0] / w[1] == pytest.approx(0.6 / 0.39)
    assert bandit.floor_weights([1.0, 0.0, 0.0], 0.4) == pytest.approx([1 / 3] * 3)  # floors take all
    assert bandit.floor_weights([0.0, 0.0], 0.1) == pytest.approx([0.5, 0.5])
    for p in np.random.default_rng(3).dirichlet([0.3] * 5, size=200):
        w = bandit.floor_weights(list(p), 0.05)
        assert sum(w) == pytest.approx(1.0) and min(w) >= 0.05 - 1e-12


def test_rounded_weights_sum_to_one() -> None:
    w = bandit.rounded_weights([1 / 3, 1 / 3, 1 / 3])
    assert math.fsum(w) == pytest.approx(1.0, abs=1e-12) and all(len(str(x)) <= 9 for x in w)


def test_probability_best_binary_is_reproducible_and_matches_the_exact_two_arm_answer() -> None:
    posts = bandit.posteriors("binary", [MeanStats(200, 20, 20), MeanStats(200, 30, 30)])
    assert posts == [{"alpha": 21.0, "beta": 181.0}, {"alpha": 31.0, "beta": 171.0}]
    seed = bandit.draw_seed("exp-id", 1)
    p = bandit.probability_best("binary", posts, "higher", seed=seed)
    assert p == bandit.probability_best("binary", posts, "higher", seed=seed)
    assert seed != bandit.draw_seed("exp-id", 2)
    from ab_testing.stats import beta_compare

    exact, _ = beta_compare(21.0, 181.0, 31.0, 171.0)  # P(arm 2 > arm 1)
    assert p[1] == pytest.approx(exact, abs=0.015) and sum(p) == pytest.approx(1.0)
    assert bandit.probability_best("binary", posts, "lower", seed=seed)[0] == pytest.approx(exact, abs=0.015)


def test_continuous_posteriors_and_arms_without_data() -> None:
    a = MeanStats.from_values([10.0, 12.0, 11.0, 9.0])
    posts = bandit.posteriors("continuous", [a, MeanStats(), MeanStats.from_values([30.0])])
    assert posts[0]["mean"] == pytest.approx(10.5) and posts[0]["sd"] == pytest.approx(
        math.sqrt(a.variance / 4)
    )
    assert posts[1]["sd"] == pytest.approx(math.sqrt(a.variance))  # the pooled unit variance: one unit wide
    assert posts[2]["mean"] == 30.0 and posts[2]["sd"] == pytest.approx(math.sqrt(a.variance))
    p = bandit.probability_best("continuous", posts, "lower", seed=1)
    assert p[0] > 0.5 and p[2] < 0.01
