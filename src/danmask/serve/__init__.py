"""`danmask serve`: the HTTP service a video site's players talk to (FastAPI + uvicorn).

One module per part: `store` (state in SQLite or PostgreSQL), `jobs` (segmentation on a bounded pool of worker
processes, or on Ray), `uploads` (size limit and content sniffing), `comments` (viewer danmaku: limits, rate limit,
Bilibili XML), `app` (the routes). Files live under the data folder, one folder per video, named by an id the
server made and checks before any path is built from it.
"""
