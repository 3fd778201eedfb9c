"""Study report figures: the latent scatters."""


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
