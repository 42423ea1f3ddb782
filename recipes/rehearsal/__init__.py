"""The CPU rehearsals: the launch wall, the real training loop, the SFT stage and the whole pipeline, on a laptop."""
