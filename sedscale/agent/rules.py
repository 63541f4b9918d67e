"""The rules policy: deterministic expert rules on residual patterns, ranked by measured success.

For each pattern found in a source's state (:func:`sedscale.agent.state.detect_patterns`) the
table :data:`RULES` lists candidate actions in expert order; patterns are visited in
:data:`PATTERN_ORDER`. Candidates that are illegal, change nothing, or lead to a configuration the
source already tried, or repeat an action that did not help this source, are dropped; patterns
seen at earlier steps stay in play after the current ones (a fix can move the residuals so that
the original pattern hides); the rest are scored by the knowledge base's success rate for
(pattern, action), shrunk toward an expert prior that falls with the candidate's rank. The best
score wins; with probability ``explore`` a seeded random candidate is taken instead (exploration
feeds the knowledge base). The generator is seeded by (campaign seed, source id, step), so a
rerun decides identically wherever and beside whomever the source runs.

The knowledge base it ranks by is a copy taken when the policy is made — the knowledge the
campaign started with. What the run learns goes into the outcome's knowledge delta, merged for
later campaigns (or the next epoch), never into this ranking: otherwise a source's decisions
would depend on which neighbours ran before it in its partition (issue 13).

It is the default policy (no GPU), the LLM policy's fallback, and the baseline the LLM must beat.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from sedscale.agent.acceptance import EDGE_PARAMS
from sedscale.agent.actions import Action, ActionError, validate_action
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.policy import Decision, DecisionRequest, Policy
from sedscale.sed.config import FitConfig
from sedscale.tokens import TokenCounts


def _a(**kw: Any) -> Action:
    return validate_action(kw, photoz=True)


AGN_FRACTIONS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.95]
AGN_AV = [0.0, 1.0, 2.0, 3.0, 4.0]
AGN_AV_COARSE = [0.0, 2.0, 4.0]  # when five values would take a big grid past ApplyLimits.max_models
LOGU_HIGH = [-3.0, -2.5, -2.0, -1.5, -1.0]

#: pattern → candidate actions, best first (expert order).
RULES: dict[str, list[Action]] = {
    "v_shape": [
        _a(op="enable", module="agn"),
        _a(op="set", param="agn.av_agn", values=AGN_AV),
        _a(op="set", param="agn.av_agn", values=AGN_AV_COARSE),
        _a(op="widen", param="dust_attenuation.av", side="up"),
        _a(op="set", param="agn.frac_agn", values=AGN_FRACTIONS),
        _a(op="enable", module="burst"),
        _a(op="widen", param="agn.av_agn", side="up"),
    ],
    "ir_under": [
        _a(op="enable", module="agn"),
        _a(op="set", param="agn.frac_agn", values=AGN_FRACTIONS),
        _a(op="widen", param="agn.frac_agn", side="up"),
        _a(op="set", param="agn.av_agn", values=AGN_AV),
        _a(op="enable", module="dust_emission"),
        _a(op="widen", param="dust_attenuation.av", side="up"),
    ],
    "line_excess": [
        _a(op="enable", module="nebular"),
        _a(op="set", param="nebular.logu", values=LOGU_HIGH),
        _a(op="enable", module="burst"),
        _a(op="set", param="stellar.metallicity", values=[0.05, 0.2, 0.4, 1.0]),
        _a(op="widen", param="nebular.logu", side="up"),
        _a(op="set", param="dust_attenuation.young_factor", values=[1.0, 2.0]),
    ],
    "uv_over": [
        _a(op="widen", param="dust_attenuation.av", side="up"),
        _a(op="set", param="dust_attenuation.av", values=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0]),
        _a(op="dust_law", law="smc"),
        _a(op="dust_law", law="modified_starburst"),
        _a(op="set", param="dust_attenuation.young_factor", values=[1.0, 2.0]),
        _a(op="widen", param="sfh.age", side="up"),
    ],
    "old_blue": [
        _a(op="enable", module="burst"),
        _a(op="widen", param="dust_attenuation.av", side="up"),
        _a(op="widen", param="sfh.age", side="down"),
        _a(op="sfh", family="constant"),
    ],
    "uv_under": [
        _a(op="enable", module="burst"),
        _a(op="widen", param="dust_attenuation.av", side="up"),
        _a(op="dust_law", law="modified_starburst"),
        _a(op="enable", module="agn"),
        _a(op="widen", param="sfh.age", side="down"),
    ],
    "generic": [
        _a(op="widen", param="dust_attenuation.av", side="up"),
        _a(op="enable", module="agn"),
        _a(op="enable", module="burst"),
        _a(op="set", param="nebular.logu", values=LOGU_HIGH),
        _a(op="set", param="agn.frac_agn", values=AGN_FRACTIONS),
        _a(op="widen", param="stellar.metallicity", side="both"),
        _a(op="dust_law", law="modified_starburst"),
        _a(op="sfh", family="exponential"),
        _a(op="widen", param="sfh.tau", side="both"),
    ],
}
#: Not a residual pattern: the configuration has the AGN on but unobscured only (av_agn = [0])
#: and the fit still fails — offer its reddening (a red, obscured AGN is what such a grid misses
#: in AGN-dominated sources and little red dots) before the broad generic list.
RULES["agn_unobscured"] = [
    _a(op="set", param="agn.av_agn", values=AGN_AV),
    _a(op="set", param="agn.av_agn", values=AGN_AV_COARSE),
]
#: "<field>_edge": the estimate of a grid parameter sits in the top cell of its value list (the
#: acceptance test's ``edge:<field>``) → widen up. A_V first jumps to :data:`AV_DUSTY` — fine steps
#: up to 8 mag in one edit (the hard mocks' dusty sources reach ~5 mag, sedscale's own mocks 6; one ``widen`` adds 1 mag
#: per step and a step budget runs out first), as Mephisto widens a range that clips the posterior.
AV_DUSTY = [1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0]
for _f, _p in EDGE_PARAMS.items():
    RULES[f"{_f}_edge"] = [_a(op="widen", param=_p, side="up")]
RULES["av_edge"].insert(0, _a(op="set", param="dust_attenuation.av", values=AV_DUSTY))
PATTERN_ORDER = tuple(f"{f}_edge" for f in EDGE_PARAMS) + ("v_shape", "line_excess", "ir_under", "uv_over", "old_blue", "uv_under", "generic")


#: A ranked candidate: (score, rule that produced it, action, the configuration it leads to).
Candidate = tuple[float, str, Action, FitConfig]


class RulesPolicy:
    """Expert rules, ranked by a frozen copy of a knowledge base (the epoch's snapshot)."""

    name = "rules"

    def __init__(self, knowledge: KnowledgeBase | None = None, *, explore: float = 0.1,
                 fallback_generic: bool = True) -> None:
        if not 0.0 <= explore < 1.0:
            raise ValueError("explore must be in [0, 1)")
        # a copy: what the caller records into its base later must not change this ranking
        self.knowledge = knowledge.copy() if knowledge is not None else KnowledgeBase()
        self.explore = explore
        self.fallback_generic = fallback_generic

    @property
    def fallback(self) -> Policy | None:
        """None: the rules cost no tokens, so a budget never hands their sources to anyone else."""
        return None

    @property
    def overhead(self) -> TokenCounts:
        """Always empty: the rules spend no tokens."""
        return TokenCounts()

    def set_base_config(self, config: FitConfig) -> None:
        """Nothing to do: the rules read each source's own configuration from its request."""

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """One decision per request (synchronous work; async for the :class:`Policy` protocol)."""
        return [self.decide_one(r) for r in requests]

    async def aclose(self) -> None:
        """Nothing to release."""

    def candidates(self, req: DecisionRequest) -> list[Candidate]:
        """Legal, untried candidates as (score, rule, action, config), best first."""
        patterns = req.state.patterns
        earlier = set(req.state.seen_patterns) - set(patterns)
        order = [p for p in PATTERN_ORDER if p in patterns and p != "generic"]
        order += [p for p in PATTERN_ORDER if p in earlier and p != "generic"]  # still relevant
        if req.config.agn.enabled and req.config.agn.av_agn == [0.0]:
            order.append("agn_unobscured")
        if "generic" in patterns or self.fallback_generic:
            order.append("generic")  # when the specific rules are exhausted
        failed = {a.action for a in req.state.history if not a.improved}
        seen: set[str] = set()
        out: list[Candidate] = []
        rank = 0
        for p in order:
            for action in RULES[p]:
                try:
                    cfg = req.try_apply(action)
                except ActionError:
                    continue
                h = cfg.hash()
                if h in req.tried or h in seen or action.brief() in failed:
                    continue
                seen.add(h)
                prior = 0.9 * 0.93**rank  # expert order: current patterns, earlier ones, generic
                rank += 1
                score = self.knowledge.score(patterns, action.key(), prior)
                out.append((score, f"{p}->{action.key()}", action, cfg))
        out.sort(key=lambda t: -t[0])  # stable: ties keep expert order
        return out

    def decide_one(self, req: DecisionRequest) -> Decision:
        """The best-scored candidate, or with probability ``explore`` a seeded random other one."""
        t0 = time.perf_counter()
        cands = self.candidates(req)
        if not cands:
            return Decision(action=None, config=None, policy=self.name, rule="no_candidate",
                            seconds=time.perf_counter() - t0)
        pick = 0
        if len(cands) > 1 and req.rng.random() < self.explore:
            pick = int(req.rng.integers(1, len(cands)))
        _, rule, action, cfg = cands[pick]
        return Decision(action=action, config=cfg, policy=self.name, rule=rule,
                        seconds=time.perf_counter() - t0)
