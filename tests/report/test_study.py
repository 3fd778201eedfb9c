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
