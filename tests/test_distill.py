import json

import pytest
import torch

from xencoder_lab import distill, losses, recipe_training, recipes
from xencoder_lab import settings as recipe_settings
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.cross_encoder import CrossEncoder, group_logits, score_groups, small_cross_encoder
from xencoder_lab.training import GROUP_LOSSES, TEACHER_LOSSES, freeze_lower_layers, train_groups

GROUPS = [
    ("Aspirin prevents heart attacks.", "Low-dose aspirin cut second heart attacks.",
     ["Measles vaccine works.", "Statins lower cholesterol."]),
    ("Vitamin D protects against tuberculosis.", "Low serum vitamin D was linked to active tuberculosis.",
     ["Aspirin cut heart attacks.", "Smoking causes lung cancer."]),
]


@pytest.fixture(scope="module")
def teacher():
    return CrossEncoder(max_length=64, cosine_scale=20.0)


def test_losses_check_shapes_and_margins():
    teacher = torch.tensor([[5.0, 1.0, 0.0], [2.0, 3.0, -1.0]])
    assert float(losses.margin_mse_loss(teacher + torch.tensor([[3.0], [-7.0]]), teacher)) == 0.0  # shift per query
    assert float(losses.score_mse_loss(teacher + 1.0, teacher)) == pytest.approx(1.0)
    swapped = teacher[:, [0, 2, 1]]
    assert float(losses.margin_mse_loss(swapped, teacher)) > 0.0
    with pytest.raises(ValueError, match="one shape"):
        losses.margin_mse_loss(teacher, teacher[:, :2])
    with pytest.raises(ValueError, match="W >= 2"):
        losses.margin_mse_loss(teacher[:, :1], teacher[:, :1])
    shifted = teacher + torch.tensor([[3.0], [-7.0]])  # a constant per query changes no softmax
    assert float(losses.softmax_kl_loss(shifted, teacher)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.softmax_kl_loss(swapped, teacher)) > 0.0
    sharper = float(losses.softmax_kl_loss(teacher * 3, teacher))  # same order, wider margins: a small KL
    assert 0.0 < sharper < float(losses.margin_mse_loss(teacher * 3, teacher))
    with pytest.raises(ValueError, match="W >= 2"):
        losses.softmax_kl_loss(teacher[:, :1], teacher[:, :1])


def test_a_frozen_document_tower_stays_as_it_was(teacher, tmp_path):
    """The distilled bi-encoder's recipe trains the query tower alone: the documents' tower gets no gradient and
    the corpus embeddings of the base model stay valid."""
    settings = recipe_settings.DISTILLED_BI_ENCODER.replace(max_length=32, train_top_layers=1)
    model, trainable = recipe_training.distilled_student(settings)
    assert not model.shared and trainable and all(name.startswith("encoder.layer.5.") for name in trainable)
    before = {n: p.detach().clone() for n, p in model.doc_tower.named_parameters()}
    q_before = model.query_tower.encoder.layer[5].output.dense.weight.detach().clone()
    targets = score_groups(teacher, GROUPS, cache=True, cache_root=tmp_path)
    train_groups(model, GROUPS, "kl", targets, lambda g: distill.bi_encoder_group_scores(model, g, 20.0),
                 steps=2, groups_per_step=2, lr=1e-3, warmup=1, show_progress=False)
    assert all(p.grad is None and torch.equal(p, before[n]) for n, p in model.doc_tower.named_parameters())
    assert not torch.equal(model.query_tower.encoder.layer[5].output.dense.weight, q_before)
    with pytest.raises(ValueError, match='use "frozen" or "shared"'):
        recipe_training.distilled_student(settings.replace(document_tower="both"))


def test_small_cross_encoder_keeps_the_bottom_layers(teacher):
    student = small_cross_encoder(teacher, layers=2, max_length=32)
    assert len(student.encoder.encoder.layer) == 2 and len(teacher.encoder.encoder.layer) == 6
    assert torch.equal(student.encoder.encoder.layer[1].output.dense.weight,
                       teacher.encoder.encoder.layer[1].output.dense.weight)
    assert student.encoder.encoder.layer[0] is not teacher.encoder.encoder.layer[0]  # a copy: training it is safe
    logits = student.score("aspirin", ["aspirin cut heart attacks", "measles"])
    assert logits.shape == (2,) and logits[0] > logits[1]  # the warm-start cosine still ranks
    with pytest.raises(ValueError, match="between 1 and 6"):
        small_cross_encoder(teacher, layers=7)


def test_teacher_scores_are_computed_once(teacher, tmp_path, monkeypatch):
    first = score_groups(teacher, GROUPS, cache=True, cache_root=tmp_path)  # (G, W)
    assert first.shape == (2, 3) and bool((first[:, 0] > first[:, 1:].max(dim=1).values).all())

    def fail(*args, **kwargs):
        raise AssertionError("scored again instead of reading the cache")

    monkeypatch.setattr(teacher, "score", fail)
    assert torch.equal(score_groups(teacher, GROUPS, cache=True, cache_root=tmp_path), first)


@pytest.mark.parametrize("loss", [*TEACHER_LOSSES, "contrastive"])
def test_students_learn_the_teachers_margins(teacher, tmp_path, loss):
    targets = score_groups(teacher, GROUPS, cache=True, cache_root=tmp_path)
    targets = targets[:, [0, 2, 1]]  # an order the students do not start with: something to learn
    torch.manual_seed(0)
    bi = BiEncoder(max_length=32)
    freeze_lower_layers(bi.query_tower, 1)
    small = small_cross_encoder(teacher, layers=1, max_length=32)
    freeze_lower_layers(small.encoder, 1)
    students = {"bi-encoder": (bi, lambda g: distill.bi_encoder_group_scores(bi, g, 20.0)),
                "cross-encoder": (small, lambda g: group_logits(small, g))}
    for name, (model, scores) in students.items():
        with torch.no_grad():
            before = losses.margin_mse_loss(scores(GROUPS), targets)
        log = train_groups(model, GROUPS, loss, targets, scores, steps=8, groups_per_step=2, lr=1e-3, warmup=1,
                           log_every=1, show_progress=False)
        assert len(log) == 8 and all(entry["loss"] == entry["loss"] for entry in log)  # no NaN
        if loss != "contrastive":  # the control ignores the teacher
            with torch.no_grad():
                after = losses.margin_mse_loss(scores(GROUPS), targets)
            assert after < before, name
    with pytest.raises(ValueError, match="unknown loss"):
        train_groups(bi, GROUPS, "hinge", targets, students["bi-encoder"][1])
    with pytest.raises(ValueError, match="one row of teacher scores per group"):
        train_groups(bi, GROUPS, "kl", targets[:1], students["bi-encoder"][1])
    with pytest.raises(ValueError, match="learns from a teacher"):
        train_groups(bi, GROUPS, "margin_mse", None, students["bi-encoder"][1])
    with pytest.raises(ValueError, match="learns from the labels"):
        train_groups(bi, GROUPS, "listwise", targets, students["bi-encoder"][1])
    assert set(TEACHER_LOSSES) < set(GROUP_LOSSES)


def test_recipes_refuse_bad_settings_changes(capsys):
    with pytest.raises(SystemExit):
        recipes.main(["bi-encoder", "--set", "negative_depth=null"])  # a change without --record
    assert "add --record" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipes.main(["bi-encoder", "--set", "no_such_setting=1", "--record"])
    assert "has no setting 'no_such_setting'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipes.main(["cross-encoder", "--record"])
    assert "--record is for bi-encoder, query-tower, distilled-bi-encoder" in capsys.readouterr().err


def test_record_keeps_an_earlier_run(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes.checkpoints, "CHECKPOINTS", tmp_path)
    settings = recipe_settings.BI_ENCODER.replace(negative_depth=None)
    manifest = {"command": "python -m xencoder_lab.recipes bi-encoder", "steps": 3, "metrics": {"all": 0.5},
                "train_seconds": 1, "hardware": {}}
    run = recipes._record("bi-encoder", settings, manifest, overwrite=False)
    assert run["changed"] == {"negative_depth": None}
    assert run["command"].endswith("--set negative_depth=null --record")
    with pytest.raises(FileExistsError, match="already records"):
        recipes._record("bi-encoder", settings, {**manifest, "metrics": {"all": 0.9}}, overwrite=False)
    stored = json.loads((tmp_path / "bi-encoder" / "variants.json").read_text())["runs"]
    assert [r["metrics"] for r in stored] == [{"all": 0.5}]


def test_a_recorded_variant_keeps_its_per_query_figures_for_paired_tests(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes.checkpoints, "CHECKPOINTS", tmp_path)
    settings = recipe_settings.QUERY_TOWER.replace(corpus_queries="title")
    per_query = {"fine-tuned": {"unseen": {"q1": 0.5, "q2": 1.0}}, "zero-shot": {"unseen": {"q1": 0.5, "q2": 0.5}}}
    manifest = {"command": "python -m xencoder_lab.recipes query-tower", "steps": 3, "train_seconds": 1,
                "hardware": {}, "metrics": {"fine-tuned": {"unseen": {"ndcg@10": 0.75}}}, "per_query": per_query}
    run = recipes._record("query-tower", settings, manifest, overwrite=False)
    assert run["command"].endswith("""--set 'corpus_queries="title"' --record""")  # ready to paste in a shell
    assert recipes._manifest("query-tower", None, settings.replace(steps=624))["steps"] == 624  # what --set trained
    recorded = recipes.checkpoints.variants("query-tower")["corpus_queries=title"]
    assert recorded["unseen"] == 0.75 and recorded["per query"] == per_query
    assert "per query" not in recipes._record("query-tower", settings.replace(lr=2e-5),
                                              {**manifest, "per_query": {}}, overwrite=False)


def test_a_small_cross_encoder_variant_is_read_as_its_students_reranking(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes.checkpoints, "CHECKPOINTS", tmp_path)
    settings = recipe_settings.SMALL_CROSS_ENCODER.replace(spread_negatives=4)
    figures = {column: {"bi-encoder": {"ndcg@10": 0.7}, "bi-encoder top 100 -> teacher": {"ndcg@10": 0.8},
                        "bi-encoder top 100 -> student": {"ndcg@10": value}}
               for column, value in (("all", 0.67), ("unseen", 0.59), ("CACM", 0.25))}
    manifest = {"command": "python -m xencoder_lab.recipes small-cross-encoder", "steps": 600, "train_seconds": 9,
                "hardware": {}, "metrics": figures,
                "log": [{"step": 0, "validation": 0.37}, {"step": 500, "validation": 0.56},
                        {"step": 600, "validation": 0.55}, {"best_step": 500, "validation": 0.56}]}
    run = recipes._record("small-cross-encoder", settings, manifest, overwrite=False)
    assert run["command"].endswith("--set spread_negatives=4 --record")
    assert (run["best step"], run["validation"]) == (500, 0.56)  # the kept step, as the checkpoint keeps it
    assert recipes.checkpoints.variants("small-cross-encoder") == {
        "spread_negatives=4": {"all": 0.67, "unseen": 0.59, "CACM": 0.25, "train seconds": 9}}


def test_the_recorded_small_cross_encoder_variant_ranks_below_its_first_stage():
    # distilled at the depth it reranks (negatives from the whole top 100): not above the first stage on any column
    recorded = recipes.checkpoints.variants("small-cross-encoder")["spread_negatives=4"]
    manifest = recipes.checkpoints.read_manifest(recipes.checkpoints.CHECKPOINTS / "small-cross-encoder")
    first = {column: m["bi-encoder"]["ndcg@10"] for column, m in manifest["metrics"].items()}
    assert all(recorded[column] < first[column] for column in ("all", "unseen", "CACM"))
