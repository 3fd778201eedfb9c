"""Declarative studies: the study files shipped with repvae (``*.yaml``, with the published numbers
they stand beside in ``published.csv``, read by ``published``), their grid (``spec``), the runner
(``runner``) and the results table reports are made from (``results``)."""
