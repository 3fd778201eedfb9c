"""Study report tables: ordering of quantities and methods."""

from repvae.report.study import pivot_table, summary_table


def _row(method: str, metric: str, value: float) -> dict:
    return {"dataset": "mnist", "method": method, "latent": 50, "metric": metric, "value": value}


def test_label_counts_sort_numerically_and_methods_keep_the_given_order():
    rows = [
        _row("M2 (labelled=600)", "error_percent_1000_labels", 9.0),
        _row("M2 (labelled=600)", "error_percent_100_labels", 20.0),
        _row("M2 (labelled=600)", "error_percent_600_labels", 11.0),
        _row("M2 (labelled=100)", "classifier_error_percent", 26.0),
    ]
    published = [
        {
            "dataset": "mnist",
            "method": "M2 (labelled=100)",
            "quantity": "classifier_error_percent",
            "value": 11.97,
        }
    ]
    table = summary_table(rows, published)
    quantities = [r["quantity"] for r in table if r["method"] == "M2 (labelled=600)"]
    assert quantities == [
        "error_percent_100_labels",
        "error_percent_600_labels",
        "error_percent_1000_labels",
    ]
    assert table[0]["ours (mean ± std)"] == "26.00" and table[0]["published"] == "11.97"
    _, columns = pivot_table(table, ["M2 (labelled=100)", "M2 (labelled=600)"])
    assert columns[2:] == ["M2 (labelled=100)", "M2 (labelled=600)"]


def test_counts_averaged_over_seeds_keep_a_decimal():
    rows = [_row("VAE", "intrinsic_dimension", v) for v in (10, 11, 11)]
    rows.append(_row("LPVAE", "intrinsic_dimension", 9))
    published = [
        {"dataset": "mnist", "method": "VAE", "quantity": "intrinsic_dimension", "value": 9}
    ]
    table = {r["method"]: r for r in summary_table(rows, published)}
    assert table["VAE"]["ours (mean ± std)"] == "10.7 ± 0.5"  # was "11 ± 0"
    assert table["VAE"]["difference"] == "1.7" and table["VAE"]["published"] == "9"
    assert table["LPVAE"]["ours (mean ± std)"] == "9"


def test_latent_scatter_samples_every_class_of_a_class_sorted_test_set(tmp_path, monkeypatch):
    import dataclasses

    import numpy as np

    from repvae.config import DataConfig
    from repvae.report import study as study_module
    from repvae.report.study import latent_scatters
    from repvae.studies.runner import run_study
    from repvae.studies.spec import Study

    study = Study.from_dict(
        {
            "name": "tiny",
            "base": {"data": {"name": "digits"}, "model": {"hidden": 16}, "train": {"epochs": 1}},
            "grid": [{"model": ["vae"], "model.latent_dim": [2]}],
            "evaluate": {"kinds": ["map"], "probes": ["linear"], "protocol": "split"},
        }
    )
    rows = run_study(study, tmp_path, log=lambda _: None)
    real_load = DataConfig.load

    def class_sorted(self):  # an image folder's test split: every image of class 0 first
        data = real_load(self)
        order = np.argsort(data.test.labels.numpy(), kind="stable")
        test = dataclasses.replace(
            data.test, images=data.test.images[order], labels=data.test.labels[order]
        )
        return dataclasses.replace(data, test=test)

    shown = []
    monkeypatch.setattr(DataConfig, "load", class_sorted)
    monkeypatch.setattr(study_module, "scatter_grid", lambda panels, *a, **k: shown.extend(panels))
    latent_scatters(rows, tmp_path, points=100)
    ((_, codes, labels),) = shown
    assert len(codes) == 100 and len(set(labels.tolist())) == 10
