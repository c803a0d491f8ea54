"""Model side of the project: model resolution and 4-bit loading, datasets, QLoRA training, generation.

Importing `tuner` loads nothing heavy; torch, transformers and PEFT are imported by the functions that use them.
CLI: `python -m tuner --help`.
"""
