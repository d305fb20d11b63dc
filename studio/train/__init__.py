"""ModelFactory: base models, LoRA fine-tuning, checkpoints, eval, export, inference. Imports core only."""
