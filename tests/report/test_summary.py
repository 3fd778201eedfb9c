"""The report's summary tables: ours beside the published values, read at a glance."""

import re

import numpy as np
import pytest
from scipy import stats

from repvae.report.summary import PM, nested_table, summary_sections, summary_table
from repvae.studies.published import Published


def _metric(method: str, metric: str, value: float, seed: int = 0, latent: int = 50) -> dict:
    return {
        "dataset": "mnist",
        "method": method,
        "latent": latent,
        "seed": seed,
        "kind": "",
        "probe": "",
        "protocol": "test",
        "metric": metric,
        "value": value,
    }


def _probe(method: str, kind: str, latent: int, accuracy: float, **extra) -> dict:
    return {
        "dataset": "mnist",
        "method": method,
        "latent": latent,
        "seed": 0,
        "kind": kind,
        "probe": "mlp",
        "protocol": "cv5",
        "metric": "accuracy",
        "accuracy": accuracy,
        "value": accuracy,
        **extra,
    }


def _published(method: str, quantity: str, value: float, **placement) -> Published:
    pm = placement.pop("pm", None)
    note = placement.pop("note", "")
    setting = placement.pop("setting", "")
    source = placement.pop("source", "zhang2022")
    placement.setdefault("study", "s")
    return Published(
        source, "Table 6", "mnist", method, setting, quantity, value, pm, note, **placement
    )


def _cells(table: list[dict], first: str) -> dict:
    return next(line for line in table if line["quantity"] == first)


def test_a_cell_holds_ours_the_published_value_and_the_difference_and_the_line_cites_them():
    rows = [_metric("M2 (labelled=100)", "classifier_error_percent", v, s) for s, v in [(0, 26.0)]]
    rows += [_metric("M1", "error_percent_100_labels", 25.8)]
    m2 = _published(
        "M2",
        "semi-supervised accuracy",
        88.03,
        pm=1.7,
        our_method="M2 (labelled=100)",
        our_quantity="classifier_error_percent",
        protocol="accuracy shown as error",
    )
    table, columns = summary_table(rows, [m2], ["M1", "M2 (labelled=100)"], "")
    assert columns == ["quantity", "M1", "M2 (labelled=100)", "source", "protocol"]
    line = _cells(table, "classifier_error_percent")
    # an accuracy beside an error becomes 100 − accuracy; the ± is the source's
    assert line["M2 (labelled=100)"] == f"26.00 / 11.97{PM}1.70 / +14.03"
    assert (line["source"], line["protocol"]) == ("zhang2022 Table 6", "accuracy shown as error")
    assert _cells(table, "error_percent_100_labels") == {
        "quantity": "error_percent_100_labels",
        "M1": "25.80",
        "M2 (labelled=100)": "",
        "source": "",
        "protocol": "",
    }


def test_a_published_method_we_do_not_train_gets_a_line_under_the_method_it_stands_beside():
    rows = [_metric("M2 (labelled=100)", "classifier_error_percent", 26.0)]
    rows += [_metric("M2 (labelled=1000)", "classifier_error_percent", 9.13)]
    beside = {"our_quantity": "classifier_error_percent", "protocol": "not trained here"}
    published = [
        _published(
            "FlowGMM", "semi-supervised accuracy", 98.94, beside="M2 (labelled=1000)", **beside
        ),
        _published("EQVAE", "semi-supervised accuracy", 91.1, beside="M2 (labelled=100)", **beside),
        _published(
            "EQVAE", "semi-supervised accuracy", 96.66, beside="M2 (labelled=1000)", **beside
        ),
    ]
    methods = ["M2 (labelled=100)", "M2 (labelled=1000)"]
    table, _ = summary_table(rows, published, methods, "")
    # ours first, then the published methods in the order the published data lists them
    assert [line["quantity"] for line in table] == [
        "classifier_error_percent",
        "classifier_error_percent: FlowGMM (published)",
        "classifier_error_percent: EQVAE (published)",
    ]
    assert table[0]["M2 (labelled=100)"] == "26.00"  # no difference against another method
    assert table[1]["M2 (labelled=1000)"] == "1.06" and table[1]["M2 (labelled=100)"] == ""
    assert [table[2][m] for m in methods] == ["8.90", "3.34"]


def test_counts_averaged_over_seeds_keep_a_decimal_and_a_measurement_we_lack_shows_a_dash():
    rows = [_metric("VAE", "intrinsic_dimension", v, seed) for seed, v in enumerate((10, 11, 11))]
    rows.append(_metric("LPVAE", "intrinsic_dimension", 9))
    published = [
        _published("VAE", "intrinsic dimension", 9, our_method="VAE", our_quantity=q)
        for q in ("intrinsic_dimension", "inception_fid")
    ]
    table, _ = summary_table(rows, published, ["VAE", "LPVAE"], "")
    # "10.7 ± 0.6" (sample std), not "11 ± 1"
    assert _cells(table, "intrinsic_dimension")["VAE"] == f"10.7{PM}0.6 / 9 / +1.7"
    assert _cells(table, "intrinsic_dimension")["LPVAE"] == "9"
    assert _cells(table, "inception_fid")["VAE"] == "— / 9.000"


def test_a_published_accuracy_stands_at_the_latent_sizes_and_kind_it_is_placed_at():
    rows = [
        _probe(m, k, z, 0.9)
        for m in ("VAE", "InfoVAE")
        for k in ("map", "sample")
        for z in (2, 8, 16)
    ]
    info = _published(
        "InfoVAE",
        "nonlinear probe accuracy",
        98,
        note="approximate (approaches 98 %)",
        our_method="InfoVAE",
        our_quantity="mlp probe, map (cv5)",
        our_latent=(8, 128),
    )
    # a probe this study did not run gets no line
    linear = _published("VAE", "linear probe accuracy", 90.9, our_method="VAE")
    linear = Published(**{**vars(linear), "our_quantity": "linear probe, map (cv5)"})
    table, columns = summary_table(rows, [info, linear], ["VAE", "InfoVAE"], "map")
    assert columns == ["quantity", "latent", "VAE", "InfoVAE", "source", "protocol"]
    assert [(line["latent"], line["InfoVAE"]) for line in table] == [
        ("2", "90.00"),
        ("8", "90.00 / ≈98.00 / -8.00"),
        ("16", "90.00 / ≈98.00 / -8.00"),
    ]
    assert table[0]["quantity"] == "mlp (cv5)"
    sample, _ = summary_table(rows, [info], ["VAE", "InfoVAE"], "sample")
    assert all("/" not in line["InfoVAE"] for line in sample)


def test_two_sources_may_give_one_cell_only_if_they_agree():
    rows = [_metric("VAE", "bpd_elbo", 1.3)]
    one = _published("VAE", "BPD", 1.24, our_method="VAE", our_quantity="bpd_elbo")
    same = Published(**{**vars(one), "table": "Table 5"})
    table, _ = summary_table(rows, [one, same], ["VAE"], "")
    assert table[0]["source"] == "zhang2022 Table 6; zhang2022 Table 5"
    other = Published(**{**vars(same), "value": 1.2})
    with pytest.raises(ValueError, match="published values disagree for VAE, bpd_elbo"):
        summary_table(rows, [one, other], ["VAE"], "")


def test_sections_name_the_published_dataset_and_list_claims_without_a_number():
    rows = [{**_probe("InfoVAE", "map", 16, 0.5), "dataset": "cifar10-jpeg"}]
    rows.append({**_metric("InfoVAE", "bpd_elbo", 4.0), "dataset": "cifar10-jpeg"})
    placed = {"our_method": "InfoVAE", "our_quantity": "mlp probe, map (cv5)"}
    cifar = Published(**{**vars(_published("InfoVAE", "acc", 53, **placed)), "dataset": "cifar10"})
    claim = Published(
        "slides",
        "MRL",
        "mnist cifar10",
        "M-InfoVAE",
        "m in 2..128",
        "acc",
        None,
        None,
        "keeps up (no number)",
        study="s",
        our_dataset="cifar10",
    )
    text = summary_sections(rows, [cifar, claim], ["InfoVAE"], "seed 0", "Budget quick.")
    assert "### cifar10-jpeg: MAP codes (posterior means)" in text
    assert "### cifar10-jpeg: other measurements" in text
    caption = "ours (seed 0) / published / ours − published; accuracies in %. Budget quick."
    assert text.count(f"*Each cell: {caption} Published values are for cifar10.*") == 2
    alone = summary_sections(rows, [], ["InfoVAE"], "seed 0", "Budget quick.")
    assert "*Each cell: ours (seed 0); accuracies in %. Budget quick.*" in alone
    assert "| mlp (cv5) | 50.00 / 53.00 / -3.00 |" in re.sub(" +", " ", text)
    assert "- slides MRL, M-InfoVAE (m in 2..128): keeps up (no number)" in text


def test_each_nested_model_is_compared_with_its_own_family_at_every_size_and_costed():
    rows = [
        _probe("VAE", "map", 2, 0.50, run="v2", train_seconds=10.0),
        _probe("VAE", "map", 8, 0.80, run="v8", train_seconds=30.0),
        _probe("InfoVAE", "map", 8, 0.90, run="i8", train_seconds=50.0),
        _probe("M-VAE", "map", 2, 0.45, run="m", train_seconds=20.0, dims=2, replaces="VAE"),
        _probe("M-VAE", "map", 8, 0.81, run="m", train_seconds=20.0, dims=8, replaces="VAE"),
        _probe("M-Info", "map", 8, 0.85, run="n", train_seconds=25.0, dims=8, replaces="InfoVAE"),
    ]
    table, columns = nested_table(rows)
    assert columns == [
        *("dataset", "nested model", "replaces", "representation, probe", "m=2", "m=8"),
        *("train s", "separate train s", "ratio"),
    ]
    by_model = {line["nested model"]: line for line in table}
    assert by_model["M-VAE"] == {
        "dataset": "mnist",
        "nested model": "M-VAE",
        "replaces": "VAE",
        "representation, probe": "map, mlp (cv5)",
        "m=2": "-5.00",
        "m=8": "+1.00",
        "train s": "20.0",
        "separate train s": "40.0",
        "ratio": "0.50",
    }
    assert (by_model["M-Info"]["m=8"], by_model["M-Info"]["ratio"]) == ("-5.00", "0.50")


def test_a_nested_model_is_compared_seed_by_seed_with_a_paired_interval_when_seeds_allow():
    nested = {0: 0.80, 1: 0.83, 2: 0.81}
    separate = {0: 0.79, 1: 0.81, 2: 0.80, 3: 0.95}  # seed 3 has no nested run: not compared
    rows = [
        _probe("VAE", "map", 8, a, run=f"v{s}", seed=s, train_seconds=30.0)
        for s, a in separate.items()
    ]
    rows += [
        _probe(
            "M-VAE", "map", 8, a, run=f"m{s}", seed=s, train_seconds=20.0, dims=8, replaces="VAE"
        )
        for s, a in nested.items()
    ]
    table, _ = nested_table(rows)
    differences = [nested[s] - separate[s] for s in nested]  # 1, 2, 1 points
    half_width = stats.t.ppf(0.975, 2) * np.std(differences, ddof=1) / np.sqrt(3)
    mean = np.mean(differences)
    expected = (
        f"{100 * mean:+.2f} [{100 * (mean - half_width):+.2f}, {100 * (mean + half_width):+.2f}]"
    )
    assert table[0]["m=8"] == expected == "+1.33 [-0.10, +2.77]"
    # one seed in common: the difference of the means, as before
    one_seed = [r for r in rows if r["seed"] == 0 or r["method"] == "VAE"]
    assert (
        nested_table(one_seed)[0][0]["m=8"]
        == f"{100 * (0.80 - np.mean(list(separate.values()))):+.2f}"
    )


def test_a_published_accuracy_under_another_protocol_stands_beside_ours_and_the_line_says_so():
    rows = [_probe("VAE", "map", 8, 0.40, protocol="split")]
    cv = _published("VAE", "accuracy", 53.0, our_quantity="mlp probe, map (cv5)", our_method="VAE")
    other_kind = _published(
        "VAE", "accuracy", 10.0, our_quantity="mlp probe, sample (cv5)", our_method="VAE"
    )
    table, _ = summary_table(rows, [cv, other_kind], ["VAE"], "map")
    line = _cells(table, "mlp (split)")
    assert line["VAE"] == "40.00 / 53.00 / -13.00"
    assert line["protocol"].startswith("protocols differ: ours split, published cv5")
    # the same probe of another representation kind is not ours to stand beside
    assert "10.00" not in str(table)
