"""Figures shared by evaluation and reports: result plots (``figures``) and pictures of what a
model does (``pictures``). They sit below both so that neither imports the other."""
