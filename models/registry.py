"""The models an artifact carries, in the order a training pass fits them (the close-date curve is anchored
to the health model, so health comes first). Adding a model is its class and one line here."""

from __future__ import annotations

from models.base import LeadModel
from models.closedate import CloseDateModel
from models.health import HealthModel
from models.intent import IntentModel
from models.reps import RepSegmentModel
from models.stage import StageModel
from models.warnings import RiskModel

MODELS: tuple[type[LeadModel], ...] = (
    HealthModel,
    StageModel,
    CloseDateModel,
    IntentModel,
    RiskModel,  # reads the close-date model's loss incidence
    RepSegmentModel,
)
# The models whose answers are parts of a lead's answer (the health model's is the answer itself).
ANSWER_PARTS: tuple[type[LeadModel], ...] = tuple(m for m in MODELS if m.Answer is not None)
