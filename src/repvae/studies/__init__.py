"""Declarative studies: the study files shipped with repvae (``*.yaml``, with their published
numbers in ``*_published.csv``), their grid (``spec``), the runner (``runner``) and the results
table reports are made from (``results``)."""
