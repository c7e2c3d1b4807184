"""The generative story of a simulated world: every parameter that varies from world to world, in one place.

leadscore's features, models and quality bars were written beside one simulator; a model that only fits that one
story would look good on it and nowhere else. So a world's story is drawn from its seed (domain randomisation):
which signals carry the outcome (profile, behaviour, notes, rep), effect sizes, linear effects or interactions and
thresholds, rep skill by industry and region, the load penalty, the noise level, the text pools. Named presets
pin a story: `classic` is the one story the simulator told before (same seed, same export), the others put most
of the outcome into one signal family. docs/simulator.md tells the story and the ranges; truth/story.json
records the one a world was drawn with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from pathlib import Path

import numpy as np

from leadscore.tools.simulator import world

FAMILIES = ("profile", "behaviour", "notes", "rep")
CLASSIC_OFFSET = -0.8
REFERENCE_LEADS = 40_000  # reference population the story's scales and the market offset are set on
_STORY_STREAM = 9_117  # tags the seed's random stream for story draws, so drawing a story never moves the world's
_URGENCY_SD = 0.55


@dataclass(frozen=True)
class Story:
    """Every generative parameter that varies. Defaults are the classic story (docs/simulator.md).

    Log-odds terms of a deal: market_offset + profile + intent + noise + behaviour + notes + rep (see `Story.eta`
    in world.make_leads and simulate._initial_chains)."""

    name: str = "classic"
    market_offset: float = CLASSIC_OFFSET  # every deal's log-odds shift: sets the base win rate
    # Profile: firmographics, all of them in the export (often missing). Tables follow world's category orders.
    profile_scale: float = 1.0
    industry_effect: tuple[float, ...] = tuple(world.INDUSTRY_EFFECT)
    region_effect: tuple[float, ...] = tuple(r[3] for r in world.REGIONS)
    customer_type_effect: tuple[float, ...] = tuple(world.CUSTOMER_TYPE_EFFECT)
    channel_effect: tuple[float, ...] = tuple(world.CHANNEL_EFFECT)
    channel_customer_effect: tuple[tuple[float, ...], ...] = ((0.0,) * 4,) * 10  # channel x customer type
    size_form: str = "log"  # "log": size_slope * log10(size); "sweet_spot": a bump around size_peak
    size_slope: float = 0.18
    size_peak: float = 2.5  # log10 employees
    size_width: float = 0.6
    size_height: float = 0.0
    budget_form: str = "distance"  # "distance" from the typical deal, or "threshold" (above budget_center or not)
    budget_industries: tuple[str, ...] = tuple(world.INDUSTRIES)  # where the budget matters at all
    budget_center: float = 12.8  # ln CNY: ~360k, the typical deal (or the threshold)
    budget_slope: float = 0.35
    budget_bonus: float = 0.3
    # Intent of the form (qualification): 询价, 产品咨询, 招商代理, 售后维修, 技术支持, 无效. Never scaled.
    intent_effect: tuple[float, ...] = tuple(world.INTENT_EFFECT)
    # Noise: a fit term no signal shows.
    hidden_fit_sd: float = 0.35
    # Behaviour: urgency is hidden but multiplies browsing and inbound contacts.
    urgency_sd: float = _URGENCY_SD
    urgency_weight: float = 0.7
    web_urgency: float = 0.9
    web_fit: float = 0.3  # browsing also rises with the deal's whole static log-odds (clipped to +-2)
    inbound_urgency: float = 0.8
    # Notes: the customer's disposition is hidden; reps' informative notes let it show (a tone clause).
    disposition_weight: float = 0.0
    note_reveal: float = 0.0  # share of informative notes that carry a tone clause
    tone_slope: float = 2.0  # P(positive tone) = sigmoid(tone_slope * disposition)
    # Rep: diligence (touch rhythm, speed of first touch), skill per industry and per region (hidden), load.
    diligence_concentration: float = 2.0  # diligence ~ Beta(c, c): the larger c, the more alike the reps
    strength_bonus: float = 0.25  # on each rep's two strength industries
    skill_industry_sd: float = 0.0
    skill_region_sd: float = 0.0
    assignment_sd: float = 0.0  # spread of the reps' shares of new leads (0: uniform)
    capacity: float = 25.0  # new leads in 30 days a rep handles without strain
    load_penalty: float = 0.0  # per unit of overload (load / capacity - 1): log-odds lost, touches slowed
    # Text pools.
    rich_text: bool = False  # larger pools: paraphrases, more overlap, signals mixed across stages
    bridge_share: float = 0.03  # real-intent forms written word for word by other intents too
    ambiguous_share: float = 0.02  # real-intent forms that say nothing of intent
    text_mix_share: float = 0.0  # forms that add a remark typical of another intent
    note_stage_mix: float = 0.0  # stage notes written from a neighbouring stage's pool

    def __post_init__(self) -> None:
        if self.size_form not in {"log", "sweet_spot"}:
            raise ValueError(f"story {self.name}: size_form must be 'log' or 'sweet_spot', got {self.size_form!r}")
        if self.budget_form not in {"distance", "threshold"}:
            raise ValueError(f"story {self.name}: budget_form must be 'distance' or 'threshold'")
        unknown = set(self.budget_industries) - set(world.INDUSTRIES)
        if unknown:
            raise ValueError(f"story {self.name}: budget_industries has unknown industries {sorted(unknown)}")

    # --- the generative terms ---------------------------------------------------------------------------------

    def firmographic_fit(self, a: dict[str, np.ndarray]) -> np.ndarray:
        """Profile log-odds before scaling, from drawn attributes (industry, size, budget, region, customer type,
        channel). The sum's order is the classic one, so the classic story gives the same floats as before."""
        log_size = np.log10(a["size"])
        if self.size_form == "log":
            size_term = self.size_slope * log_size
        else:
            size_term = self.size_height * np.exp(-0.5 * ((log_size - self.size_peak) / self.size_width) ** 2)
        log_budget = np.log(a["budget"])
        if self.budget_form == "distance":
            budget_term = -np.abs(log_budget - self.budget_center) * self.budget_slope + self.budget_bonus
        else:
            budget_term = np.where(log_budget >= self.budget_center, self.budget_slope, -self.budget_slope)
        matters = np.isin(a["industry"], [world.INDUSTRIES.index(i) for i in self.budget_industries])
        return (
            np.asarray(self.industry_effect)[a["industry"]]
            + size_term
            + budget_term * matters
            + np.asarray(self.region_effect)[a["region"]]
            + np.asarray(self.customer_type_effect)[a["ctype"]]
            + np.asarray(self.channel_effect)[a["channel"]]
            + np.asarray(self.channel_customer_effect)[a["channel"], a["ctype"]]
        )

    def profile_fit(self, a: dict[str, np.ndarray]) -> np.ndarray:
        """fit_observable: the scaled firmographics plus the (never scaled) intent term."""
        return self.profile_scale * self.firmographic_fit(a) + np.asarray(self.intent_effect)[a["intent"]]

    def load_pressure(self, load: np.ndarray) -> np.ndarray:
        """Overload of a rep who takes a lead with `load` new leads in the 30 days before: 0 up to capacity."""
        return np.maximum(np.asarray(load, dtype=float) / self.capacity - 1.0, 0.0)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Story:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"seed", "variance"}
        if unknown:
            raise ValueError(f"story: unknown fields {sorted(unknown)}")
        values = {k: v for k, v in data.items() if k in known}
        for name in ("industry_effect", "region_effect", "customer_type_effect", "channel_effect", "intent_effect"):
            if name in values:
                values[name] = tuple(float(x) for x in values[name])
        if "channel_customer_effect" in values:
            values["channel_customer_effect"] = tuple(
                tuple(float(x) for x in row) for row in values["channel_customer_effect"]
            )
        if "budget_industries" in values:
            values["budget_industries"] = tuple(values["budget_industries"])
        return cls(**values)


INVALID = 5  # index of 无效 in text.INTENTS
CLASSIC = Story()


# --- reference population: the scales and the market offset are set on it, never on the world being drawn ------


@cache
def _reference() -> dict[str, np.ndarray]:
    attrs = world.draw_profile(REFERENCE_LEADS, np.random.default_rng(_STORY_STREAM))
    return {k: v[attrs["intent"] != INVALID] for k, v in attrs.items()}


REFERENCE_LOAD = 300 * 30 / 365  # a rep's new leads in 30 days: the simulator gives each rep ~300 leads a year


def _mean_load_loss(story: Story) -> float:
    """Expected log-odds a lead loses to its owner's load, on a reference team of 20 reps whose shares of new
    leads spread as the story's do (a busy rep's leads are the more numerous, so leads are weighted by share)."""
    if story.load_penalty == 0:
        return 0.0
    rng = np.random.default_rng(_STORY_STREAM)
    share = np.exp(rng.normal(0.0, story.assignment_sd, (200, 20)))
    share = share / share.sum(axis=1, keepdims=True)
    load = rng.poisson(REFERENCE_LOAD * 20 * share)
    loss = story.load_penalty * story.load_pressure(load)
    return float((loss * share).sum(axis=1).mean())


def _mean_eta_without_offset(story: Story) -> float:
    """Expected static log-odds of a valid lead, offset aside: profile, the mean rep term (strength bonus on two
    of six industries; random skills have mean zero) and the mean load loss."""
    rep = story.strength_bonus * 2 / len(world.INDUSTRIES)
    return float(story.profile_fit(_reference()).mean()) + rep - _mean_load_loss(story)


def _calibrated(story: Story, shift: float = 0.0) -> Story:
    """The story with the market offset that gives valid leads the classic mean log-odds (plus `shift`), so the
    base win rate stays in the documented range whatever the effects are."""
    offset = CLASSIC_OFFSET + _mean_eta_without_offset(CLASSIC) - _mean_eta_without_offset(story) + shift
    return replace(story, market_offset=round(offset, 6))


# --- composing a story from family variances ------------------------------------------------------------------


def _compose(name: str, variance: dict[str, float], rng: np.random.Generator, *, noise_sd: float) -> Story:
    """A story whose signal families have the given variances on the log-odds scale (valid leads).

    Effects are drawn (industry, region, customer type, channel, forms of size and budget, interactions); the
    profile is then scaled to its variance on the reference population, the others set analytically."""
    n_ind, n_reg = len(world.INDUSTRIES), len(world.REGIONS)
    size_form = "sweet_spot" if rng.random() < 0.5 else "log"
    budget_form = "threshold" if rng.random() < 0.5 else "distance"
    # Budget matters only in some industries half of the time.
    if rng.random() < 0.5:
        budget_industries = tuple(sorted(rng.choice(world.INDUSTRIES, rng.integers(1, 4), replace=False).tolist()))
    else:
        budget_industries = tuple(world.INDUSTRIES)
    cc_sd = rng.uniform(0.2, 0.6) if rng.random() < 0.5 else 0.0
    draft = Story(
        name=name,
        industry_effect=tuple(np.round(rng.normal(0, 0.4, n_ind), 3)),
        region_effect=tuple(np.round(rng.normal(0, 0.2, n_reg), 3)),
        customer_type_effect=tuple(np.round(rng.normal(0, 0.3, 4), 3)),
        channel_effect=tuple(np.round(rng.normal(0, 0.3, 10), 3)),
        channel_customer_effect=tuple(tuple(np.round(row, 3)) for row in rng.normal(0, cc_sd, (10, 4))),
        size_form=size_form,
        size_slope=round(rng.uniform(0.0, 0.35), 3),
        size_peak=round(rng.uniform(1.3, 3.3), 3),
        size_width=round(rng.uniform(0.3, 0.8), 3),
        size_height=round(rng.uniform(0.5, 1.5), 3),
        budget_form=budget_form,
        budget_industries=budget_industries,
        budget_center=round(rng.uniform(11.8, 13.5), 3),
        budget_slope=round(rng.uniform(0.2, 0.8), 3),
        budget_bonus=0.3,
        intent_effect=(
            round(rng.uniform(0.1, 0.6), 3),
            0.0,
            round(rng.uniform(-0.5, 0.2), 3),
            round(rng.uniform(-2.0, -1.0), 3),
            round(rng.uniform(-2.0, -1.0), 3),
            -4.0,
        ),
    )
    firmographic = draft.firmographic_fit(_reference())
    profile_scale = float(np.sqrt(variance["profile"] / firmographic.var()))
    share_industry = rng.uniform(0.3, 0.7)
    rep_sd = np.sqrt(variance["rep"])
    return _calibrated(
        replace(
            draft,
            profile_scale=round(profile_scale, 6),
            hidden_fit_sd=round(noise_sd, 4),
            urgency_weight=round(np.sqrt(variance["behaviour"]) / _URGENCY_SD, 4),
            web_urgency=round(rng.uniform(0.6, 1.2), 3),
            web_fit=round(rng.uniform(0.0, 0.3), 3),
            inbound_urgency=round(rng.uniform(0.5, 1.1), 3),
            disposition_weight=round(np.sqrt(variance["notes"]), 4),
            note_reveal=round(rng.uniform(0.35, 0.75), 3),
            tone_slope=round(rng.uniform(1.5, 3.0), 3),
            strength_bonus=0.0,
            skill_industry_sd=round(rep_sd * np.sqrt(share_industry), 4),
            skill_region_sd=round(rep_sd * np.sqrt(1 - share_industry), 4),
            diligence_concentration=round(2.0 + 6.0 * (1 - variance["rep"] / max(sum(variance.values()), 1e-9)), 3),
            assignment_sd=round(rng.uniform(0.2, 0.6), 3),
            capacity=round(rng.uniform(22, 32), 1),
            load_penalty=round(rng.uniform(0.3, 1.2), 3),
            rich_text=True,
            bridge_share=round(rng.uniform(0.04, 0.09), 3),
            ambiguous_share=round(rng.uniform(0.02, 0.05), 3),
            text_mix_share=round(rng.uniform(0.08, 0.2), 3),
            note_stage_mix=round(rng.uniform(0.08, 0.2), 3),
        ),
        shift=rng.uniform(-0.2, 0.2) if name.startswith("random") else 0.0,
    )


# Family variances of the presets (log-odds, valid leads). Classic has about profile 0.34 (firmographics without
# the intent term, which adds ~0.45), behaviour 0.15, notes 0, rep 0.01, noise 0.12; its oracle AUC is ~0.92.
_DOMINANT, _MINOR = 0.5, 0.05
PRESET_NAMES = ("classic", "profile", "behaviour", "notes", "rep")


def preset(name: str) -> Story:
    """A named story: `classic`, or one where the outcome is carried mostly by one signal family."""
    if name == "classic":
        return CLASSIC
    if name not in FAMILIES:
        raise ValueError(f"unknown story {name!r}: choose one of {', '.join(PRESET_NAMES)}, or a story.json path")
    variance = {family: _DOMINANT if family == name else _MINOR for family in FAMILIES}
    rng = np.random.default_rng([_STORY_STREAM, PRESET_NAMES.index(name)])
    # The same visibility and load in every preset, so what differs between them is which family carries the outcome.
    fixed = {"web_urgency": 0.9, "web_fit": 0.1, "inbound_urgency": 0.8, "note_reveal": 0.6, "tone_slope": 2.5}
    fixed |= {"assignment_sd": 0.4, "capacity": 26.0, "load_penalty": 0.6}
    return _calibrated(replace(_compose(name, variance, rng, noise_sd=0.35), **fixed))


def draw(seed: int) -> Story:
    """The story a seed draws: family variances from a Dirichlet over a total of 0.4-0.8 (log-odds, valid
    leads; the intent term adds about 0.5), noise sd 0.2-0.5, effects and forms as in `_compose`, a base-rate
    shift of +-0.2."""
    rng = np.random.default_rng([_STORY_STREAM, seed])
    total = rng.uniform(0.4, 0.8)
    shares = rng.dirichlet(np.ones(len(FAMILIES)))
    variance = {family: float(total * share) for family, share in zip(FAMILIES, shares, strict=True)}
    return _compose(f"random-{seed}", variance, rng, noise_sd=float(rng.uniform(0.2, 0.5)))


def resolve(story: str | Story | Path | None, seed: int) -> Story:
    """A story from a preset name, a story.json path, a Story, or None (drawn from the seed)."""
    if story is None or story == "random":
        return draw(seed)
    if isinstance(story, Story):
        return story
    if str(story) in PRESET_NAMES:
        return preset(str(story))
    path = Path(story)
    if path.suffix == ".json":
        if not path.exists():
            raise FileNotFoundError(f"story file {path} does not exist")
        return Story.from_json(json.loads(path.read_text()))
    raise ValueError(f"unknown story {story!r}: choose one of {', '.join(PRESET_NAMES)}, random, or a story.json path")
