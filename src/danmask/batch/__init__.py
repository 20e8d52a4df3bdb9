"""`danmask batch`: segment a catalog of videos on Ray, long films split so that one film uses many workers.

The stages, one module each: `inputs` (files, folders, list files -> videos and output names), `plan` (a long
video cut at keyframes into parts, each with a short warm-up before it), `merge` (the parts' tracks joined by pts
into one track, person ids carried across the cuts), `manifest` (one JSONL row per video), `run` (the Ray driver:
tasks, retries, resuming, progress). Outputs appear under their final names only when complete.
"""
