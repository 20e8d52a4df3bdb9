"""Training toolkit (extra `[train]`, needs torch): data, augmentation, losses, teachers, loop, export."""
