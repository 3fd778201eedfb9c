"""The ``classifier`` metric: a model's own q(y|x) (semi-supervised models), scored on a split
the way semi-supervised tables print it (test error in %, as Kingma et al.)."""

from __future__ import annotations

import torch

from repvae.evaluate.metric import Context, Metric, Result, skipped, values_at


@torch.no_grad()
def _classifier(ctx: Context) -> Result:
    model = ctx.run.model
    if not model.capabilities.classifier:
        return skipped(f"the {model.family} family: {model.capabilities.why_not('classifier')}")
    split = getattr(ctx.data, ctx.split)
    device = next(model.parameters()).device
    predicted = torch.cat(
        [model.classify(x.to(device)).argmax(1).cpu() for x in split.images.split(1024)]
    )
    accuracy = (predicted == split.labels).float().mean().item()
    return {
        "split": ctx.split,
        "n": len(split.labels),
        "labelled_images": ctx.run.summary.get("labelled_images"),
        "accuracy": accuracy,
        "error_percent": 100.0 * (1.0 - accuracy),
    }


def _summary(result: Result) -> list[str]:
    if "skipped" in result:
        return [f"  classifier skipped: {result['skipped']}"]
    return [
        f"  own classifier q(y|x): {100 * result['accuracy']:.2f}% on {result['n']} "
        f"{result['split']} images (trained with {result['labelled_images']} labels)"
    ]


METRIC = Metric(
    "classifier",
    _classifier,
    values_at({"classifier_error_percent": ("error_percent",)}),
    _summary,
)
