"""The publish gate: a new model becomes champion only if, on the same holdout, it beats the champion and
every baseline. The decision and the figures behind it are returned for MLflow and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.artifact import LeadArtifact
from training.metrics import expected_calibration_error

MIN_UNSEEN = 200  # holdout snapshots of leads the champion never saw, for a fair head-to-head
BASELINE_NOISE = 0.005  # AUC: a candidate this close to a baseline is not worse than it (issue 16's bar)


@dataclass
class GateDecision:
    promote: bool
    decision: str  # promoted | kept champion
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def publish_gate(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    candidate: str,
    champion: LeadArtifact | None,
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
) -> GateDecision:
    """`scores`: the candidate's and the baselines' predictions on the holdout `snapshots`; the champion
    (if any) scores the same snapshots through its own pipeline.

    With a champion, the candidate is promoted only if it beats the champion (ties go to the champion: a
    retrain that is no better does not move what users see) and is behind no baseline by more than
    BASELINE_NOISE. Without one, the candidate is published whatever the comparison says: model selection
    already chose it as the best on time-split folds, the customer's baselines among the candidates, and a
    first training must end with a servable model; the reasons then say what a gate would have refused."""
    figures = {f"auc {name}": float(roc_auc_score(y, p)) for name, p in scores.items()}
    ours = figures[f"auc {candidate}"]
    figures["ece candidate"] = expected_calibration_error(scores[candidate], y)
    reasons, failed = [], False
    for name in scores:
        if name == candidate:
            continue
        auc = figures[f"auc {name}"]
        verdict = "胜过" if ours > auc else "噪声内持平" if ours >= auc - BASELINE_NOISE else "未胜过"
        failed |= verdict == "未胜过"
        reasons.append(f"{verdict}基准 {name}: AUC {ours:.4f} vs {auc:.4f}")
    if champion is None:
        if failed:
            reasons.append("尚无冠军模型：首次训练照样发布，门槛本会拒绝它 (no champion yet: published anyway, "
                           "a gate would have refused it for the baseline above)")  # fmt: skip
        else:
            reasons.append("尚无冠军模型 (no champion yet)")
        return GateDecision(True, "promoted (first model)", reasons, figures)
    failed |= not _beats_champion(y, scores[candidate], champion, tables, snapshots, figures, reasons)
    return GateDecision(not failed, "kept champion" if failed else "promoted", reasons, figures)


def _beats_champion(y, candidate_p, champion, tables, snapshots, figures, reasons) -> bool:
    """Compare on the holdout leads the champion never trained on (a model is always flattered by its own
    training leads). If too few are left (retraining on the same export), compare with the champion's
    recorded holdout AUC instead, and say so."""
    unseen = ~snapshots["lead_id"].isin(champion.pipeline.history_["lead_id"]).to_numpy()
    name = f"现任冠军 {champion.model_version}"
    if unseen.sum() >= MIN_UNSEEN and 0 < y[unseen].mean() < 1:
        rows = snapshots[unseen].reset_index(drop=True)
        champion_auc = float(roc_auc_score(y[unseen], champion.predict(tables, rows)))
        ours = float(roc_auc_score(y[unseen], candidate_p[unseen]))
        where = f"同一批 {int(unseen.sum())} 个冠军未见过的快照"
    else:
        champion_auc = float(champion.metrics.get("test_auc", np.nan))
        ours = float(roc_auc_score(y, candidate_p))
        where = "冠军训练时见过这批线索，改为对比冠军记录的留出集 AUC (recorded holdout)"
    figures["auc champion"], figures["auc candidate vs champion"] = champion_auc, ours
    beats = bool(ours > champion_auc) or bool(np.isnan(champion_auc))
    reasons.append(f"{'胜过' if beats else '未胜过'}{name}: AUC {ours:.4f} vs {champion_auc:.4f} ({where})")
    return beats
