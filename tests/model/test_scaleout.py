"""Scale-out on a real Dask LocalCluster: features, scores and the health model equal (or, for the health
model, equivalent within a stated tolerance) to what one machine computes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.contract import EVENT_TABLES, ContractError
from features.pipeline import raw_features
from features.screening import ScreeningConfig
from features.snapshots import make_snapshots
from leadscore.jobs.batch import score_export
from leadscore.jobs.scaleout import DaskFeatures, dask_client, partition_of, score_export_on_dask
from leadscore.tools.cli import main
from models.health import HealthModel

# lightgbm.dask learns each tree from histograms merged across workers: the trees differ slightly from one
# machine's, so the health model is held to its ranking quality, not to equal trees.
AUC_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def client():
    with dask_client("local") as client:
        yield client


@pytest.fixture(scope="module")
def snapshots(tables) -> pd.DataFrame:
    snaps = make_snapshots(tables)
    return snaps.sample(2500, random_state=1).reset_index(drop=True)


def test_partitions_are_stable_and_cover_every_lead() -> None:
    ids = pd.Series([f"L{i}" for i in range(1000)])
    part = partition_of(ids, 7)
    assert set(part) == set(range(7))
    np.testing.assert_array_equal(part, partition_of(ids.to_numpy(), 7))  # the same in any container
    np.testing.assert_array_equal(partition_of(ids + " ", 7), part)  # ids are compared as the contract reads them


def test_training_features_on_dask_equal_one_machine(client, tables, snapshots) -> None:
    one = raw_features(tables, snapshots)
    spread = DaskFeatures(client, leads_per_partition=1000).raw(tables, snapshots, ScreeningConfig.default())
    pd.testing.assert_frame_equal(spread, one, check_exact=False, rtol=1e-12)
    assert (spread["text_notes"] != "").any() and (spread["text_form"] != "").any()


def test_partitions_keep_point_in_time(client, tables, snapshots) -> None:
    """Dropping every event stamped after the latest as_of of a partition's snapshots changes nothing."""
    early = snapshots.assign(as_of=snapshots["as_of"] - pd.Timedelta(days=30))
    early = early[early["as_of"] > early["lead_id"].map(tables["leads"].set_index("lead_id")["created_at"])]
    cut = early["as_of"].min() + (early["as_of"].max() - early["as_of"].min()) / 2
    early = early[early["as_of"] <= cut].reset_index(drop=True)
    trimmed = dict(tables)
    for name in EVENT_TABLES:
        trimmed[name] = tables[name][tables[name]["ts"] <= cut].reset_index(drop=True)
    engine = DaskFeatures(client, leads_per_partition=1000)
    full = engine.raw(tables, early, ScreeningConfig.default())
    past_only = engine.raw(trimmed, early, ScreeningConfig.default())
    owner_and_screen = [c for c in full.columns if c.startswith(("owner_", "screen_"))]  # read outcomes, not events
    pd.testing.assert_frame_equal(full.drop(columns=owner_and_screen), past_only.drop(columns=owner_and_screen))


def test_scores_on_dask_equal_one_machine(client, trained, sim_dir, tmp_path) -> None:
    """`leadscore score --dask ADDRESS` (the CLI, on the running cluster) and `leadscore score` write the
    same answers; many small partitions, so leads, events and owners are spread thin."""
    model_dir = trained["result"].artifact.save(tmp_path / "model")
    leads = pd.read_parquet(sim_dir / "leads.parquet")
    as_of = (leads["created_at"].min() + pd.Timedelta(days=75)).isoformat()  # a few hundred open leads: quick
    common = ["score", "--data", str(sim_dir), "--as-of", as_of, "--model-dir", str(model_dir), "--chunk-size", "64"]
    assert main([*common, "--out", str(tmp_path / "one.parquet")]) == 0
    address = client.scheduler.address
    assert (
        main([*common, "--out", str(tmp_path / "dask.parquet"), "--dask", address, "--leads-per-partition", "400"]) == 0
    )
    one = pd.read_parquet(tmp_path / "one.parquet").set_index("lead_id").sort_index()
    spread = pd.read_parquet(tmp_path / "dask.parquet").set_index("lead_id").sort_index()
    assert len(one) > 100
    pd.testing.assert_frame_equal(spread, one, check_exact=False, rtol=1e-9, check_dtype=False)
    assert not list(tmp_path.glob(".dask.parquet.*")), "the partition scratch folder is removed"


def test_features_of_a_fitted_pipeline_on_dask_equal_one_machine(client, tables, fitted_pipeline, snapshots) -> None:
    one = fitted_pipeline.transform(tables, snapshots, details=True)
    spread = DaskFeatures(client, leads_per_partition=1000).transform(fitted_pipeline, tables, snapshots)
    pd.testing.assert_frame_equal(spread, one, check_exact=False, rtol=1e-12)


def test_health_model_on_dask_ranks_as_well_as_one_machine(client, trained) -> None:
    holdout = trained["result"].holdout
    leads = holdout.snapshots["lead_id"].to_numpy()
    fit_rows = partition_of(leads, 2) == 0  # half the leads to fit, the other half to judge
    x, y = holdout.features.reset_index(drop=True), holdout.y
    judged = {}
    for name, engine in [("one machine", None), ("lightgbm.dask", client)]:
        model = HealthModel(calibration_folds=2).fit(x[fit_rows], y[fit_rows], leads[fit_rows], client=engine)
        judged[name] = model.predict(x[~fit_rows])
    auc = {name: roc_auc_score(y[~fit_rows], p) for name, p in judged.items()}
    assert auc["one machine"] > 0.75, auc
    assert abs(auc["lightgbm.dask"] - auc["one machine"]) <= AUC_TOLERANCE, auc
    assert np.corrcoef(judged["one machine"], judged["lightgbm.dask"])[0, 1] > 0.95


@pytest.fixture(scope="module")
def csv_world(tmp_path_factory) -> Path:
    """A small export in CSV, the contract's everyday format."""
    from leadscore.tools.simulator import simulate

    out = tmp_path_factory.mktemp("csv") / "world"
    simulate(1000, 23, out, story="classic", progress=False, table_format="csv")
    return out


def test_scores_of_a_csv_export_on_dask_equal_one_machine(client, trained, csv_world, tmp_path) -> None:
    artifact = trained["result"].artifact
    score_export(artifact, csv_world, tmp_path / "one.jsonl", progress=False)
    summary = score_export_on_dask(
        artifact, csv_world, tmp_path / "dask.jsonl", client, leads_per_partition=200, progress=False
    )
    one = pd.read_json(tmp_path / "one.jsonl", lines=True).set_index("lead_id").sort_index()
    spread = pd.read_json(tmp_path / "dask.jsonl", lines=True).set_index("lead_id").sort_index()
    assert summary["partitions"] == 5 and len(spread) == summary["leads"] > 50
    assert spread.to_json(orient="records", force_ascii=False) == one.to_json(orient="records", force_ascii=False)


def test_a_bad_event_row_on_dask_is_reported_like_on_one_machine(client, trained, csv_world, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(csv_world, broken)
    activities = pd.read_csv(broken / "activities.csv", dtype=str, keep_default_na=False)
    bad = activities.iloc[[0]].assign(lead_id="NO-SUCH-LEAD")
    pd.concat([activities, bad]).to_csv(broken / "activities.csv", index=False)
    with pytest.raises(ContractError, match="no such lead"):
        score_export_on_dask(trained["result"].artifact, broken, tmp_path / "x.csv", client, progress=False)


def test_train_models_on_dask_end_to_end(client, csv_world) -> None:
    """The whole recipe on the cluster (features per partition, lightgbm.dask) on a small world: it trains,
    its holdout is judged, and the artifact it serves scores."""
    from features.contract import load_export
    from training.train import train_models

    small = load_export(csv_world).tables
    result = train_models(small, progress=False, refit=False, engine=DaskFeatures(client))
    assert result.metrics["test_auc"] > 0.7, result.metrics["test_auc"]
    snaps = result.holdout.snapshots.head(20)
    answers = result.artifact.score_tables(small, snaps)
    assert [a.lead_id for a in answers] == snaps["lead_id"].tolist()
