"""Training: the loop (teacher, baseline or distilled student), resume, DDP, and the CLI."""
