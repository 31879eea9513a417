"""dtgan.keys: every builder round-trips through its parser, parsers refuse foreign keys, the strings are the
documented ones (docs/interfaces.md "Metric keys"), and the module stands on the standard library alone."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dtgan import keys

REPO = Path(__file__).resolve().parents[2]
KEYS_FILE = REPO / "platform" / "dtgan" / "keys.py"
METRICS = keys.FIDELITY_METRICS + keys.DIVERSITY_METRICS
BUILDERS = {"fid": keys.fid_key, "kid": keys.kid_key, "is": keys.is_key, "ic_lpips": keys.ic_lpips_key}


def test_keys_imports_only_the_standard_library():
    tree = ast.parse(KEYS_FILE.read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    top = {name.split(".")[0] for name in imported}
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top
    code = (
        "import sys, dtgan.keys; "
        "print(sorted(m for m in ('torch', 'mlflow', 'numpy', 'pydantic', 'ray') if m in sys.modules)); "
        "print(sorted(m for m in sys.modules if m.startswith('dtgan.') and m != 'dtgan.keys'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]


def test_the_strings_are_the_documented_ones():
    assert keys.fid_key("mix") == "eval/fid_mix"
    assert keys.kid_key("latent", "A") == "eval/kid_latent_A"
    assert keys.fid_key("mix", "A", "scratch") == "eval/fid_mix_A.scratch"
    assert keys.is_key("mix", None, "scratch") == "eval/is_mix.scratch"
    assert keys.ic_lpips_key("reference", "metal plate") == "eval/ic_lpips_reference_metal-plate"
    assert keys.train_key("g/latent/adv") == "train/g/latent/adv"
    assert keys.init_key(keys.fid_key("mix", "A")) == "eval_init/fid_mix_A"
    assert keys.downstream_key("mix", "resnet50") == "downstream/error_mix_resnet50"
    assert keys.downstream_key("reference_vA_B_n4000", "resnet50", "mean") == (
        "downstream/error_reference_vA_B_n4000_resnet50_mean"
    )
    assert keys.final_key("eval/fid_mix") == "final/fid_mix"
    assert keys.final_key("downstream/error_mix_resnet50_mean") == "final/error_mix_resnet50"
    assert keys.best_key("eval/fid_mix") == "best/eval/fid_mix"
    assert keys.toggle_tag("fg_classifier") == "toggle.fg_classifier"
    assert keys.generated_features_artifact("mix") == "eval/features/gen_mix_all.npy"
    assert keys.real_features_artifact("A") == "eval/features/real_A.npy"
    assert f"{keys.FEATURES_DIR}/{keys.generated_features_file('latent', 'A')}" == "features/gen_latent_A.npy"
    assert keys.TAG_PARENT_RUN_ID == "mlflow.parentRunId" and keys.TAG_NOTE == "mlflow.note.content"


def _safe(name: str | None) -> str | None:
    return None if name is None else keys.safe_name(name)


def test_safe_name_is_idempotent_and_leaves_no_period():
    for name in ("metal plate", "A.scratch", "a/b", "ok_name-1", "ünïcode"):
        once = keys.safe_name(name)
        assert keys.safe_name(once) == once and "." not in once and re.fullmatch(r"[A-Za-z0-9_\-]+", once)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("guidance", keys.GUIDANCES)
@pytest.mark.parametrize("product", [None, "A", "metal plate", "A.b"])
@pytest.mark.parametrize("defect", [None, "scratch", "broken.large"])
def test_eval_keys_round_trip(metric, guidance, product, defect):
    key = BUILDERS[metric](guidance, product, defect)
    assert key == keys.eval_key(metric, guidance, product, defect)
    assert keys.parse_eval_key(key) == (metric, guidance, _safe(product), _safe(defect))
    # the report reads pooled scopes only: a per-defect key is never product "A.scratch"
    parse_scoped = keys.parse_fidelity_key if metric in keys.FIDELITY_METRICS else keys.parse_diversity_key
    other = keys.parse_diversity_key if metric in keys.FIDELITY_METRICS else keys.parse_fidelity_key
    expected = None if defect is not None else (metric, guidance, _safe(product) or keys.SCOPE_ALL)
    assert parse_scoped(key) == expected
    assert other(key) is None
    if defect is None:  # the report's builder: a scope back to its key
        assert keys.eval_key(metric, guidance, keys.scope_product(expected[2])) == key
    assert keys.parse_init_key(keys.init_key(key)) == key


def test_eval_builders_refuse_unknown_metrics_and_guidances():
    with pytest.raises(ValueError, match="guidance"):
        keys.fid_key("both")
    with pytest.raises(ValueError, match="metric"):
        keys.eval_key("lpips", "mix")
    with pytest.raises(ValueError):
        keys.init_key("train/step_ms")
    with pytest.raises(ValueError):
        keys.final_key("train/step_ms")


@pytest.mark.parametrize(
    "key",
    [
        "train/images_per_s",
        "eval/identity_psnr",
        "eval/fid_both",
        "eval/fid_mix_",
        "eval/fidmix",
        "eval/lpips_mix",
        "eval_init/fid_mix",
        "eval/fid_mix_A.b.c",
        "search/fid_mix_intermediate",
        "downstream/error_mix_resnet50",
        "final/fid_mix",
    ],
)
def test_eval_parsers_refuse_foreign_keys(key):
    assert keys.parse_eval_key(key) is None
    assert keys.parse_fidelity_key(key) is None
    assert keys.parse_diversity_key(key) is None


def test_train_and_init_parsers():
    for term in ("g/latent/adv", "images_per_s", "d/ref/r1"):
        assert keys.parse_train_key(keys.train_key(term)) == term
    for key in (keys.TRAIN_IMAGES_PER_S, keys.TRAIN_STEP_MS, keys.TRAIN_LAMBDA_DS, keys.TRAIN_EMA_BETA):
        assert keys.train_key(keys.parse_train_key(key)) == key
    assert keys.parse_train_key("eval/fid_mix") is None and keys.parse_train_key("train/") is None
    assert keys.parse_init_key("eval/fid_mix") is None and keys.parse_init_key("eval_init/") is None


@pytest.mark.parametrize("arm", keys.ARMS)
@pytest.mark.parametrize("backbone", ["resnet50", "tf_efficientnet_b0", "resnet50.a1_in1k"])
def test_error_keys_round_trip(arm, backbone):
    key = keys.downstream_key(arm, backbone)
    assert keys.parse_error_key(key) == (arm, keys.safe_name(backbone))
    assert keys.downstream_key(*keys.parse_error_key(key)) == key  # the report's lookup of a parsed key
    for stat in ("mean", "std"):
        assert (
            keys.parse_error_key(keys.downstream_key(arm, backbone, stat)) is None
        )  # aggregates: not a seed


def test_error_parser_refuses_foreign_keys():
    for key in ("downstream/error_unknown_resnet50", "eval/fid_mix", "downstream/accuracy_mix_resnet50"):
        assert keys.parse_error_key(key) is None


def test_search_objectives_round_trip():
    objectives = ((keys.fid_key("mix"), "min"), (keys.downstream_key("mix", "resnet50"), "max"))
    tag = keys.search_objectives_tag(objectives)
    assert tag == "eval/fid_mix:min,downstream/error_mix_resnet50:max"
    assert keys.parse_search_objectives(tag) == objectives
    assert keys.parse_search_objectives(None) == ((keys.fid_key("mix"), "min"),)
    assert keys.parse_search_objectives("eval/kid_mix") == (("eval/kid_mix", "min"),)


def test_tag_names_are_unique_per_meaning():
    tags = {name: value for name, value in vars(keys).items() if name.startswith("TAG_")}
    # TAG_STUDY's value equals RUN_KIND_STUDY's; no two tag constants share a name string
    assert len(set(tags.values())) == len(tags), sorted(tags.items(), key=lambda kv: kv[1])


def _section(title: str) -> str:
    text = (REPO / "docs" / "interfaces.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_documented_metric_keys_and_tags_are_the_modules():
    section = _section("Metric keys")
    literals = set(re.findall(r"`([a-z_]+/[a-z_/]+)`", section))
    constants = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    fixed = sorted(k for k in literals if k.startswith(("train/", "eval/", "downstream/")))
    assert fixed, "no literal keys found in the section"
    for key in fixed:
        assert key in constants or keys.parse_eval_key(key) is not None, key
    tags_line = re.search(r"Tags: (.*?)\.\n", section, re.S).group(1)
    tags = re.findall(r"`([a-z_]+)`", tags_line)
    tag_values = {v for k, v in vars(keys).items() if k.startswith("TAG_")}
    assert tags and set(tags) <= tag_values, set(tags) - tag_values
    training = _section("Training")  # the loss-term section names the train/ rates
    for key in re.findall(r"`(train/[a-z_]+)`", training):
        assert key in constants, key
