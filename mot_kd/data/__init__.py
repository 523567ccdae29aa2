"""Data layer: MOTChallenge/JDE readers, the training dataset, and the synthetic MOT generator."""
