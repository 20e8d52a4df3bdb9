"""Danmaku: comment files, the one layout engine, the burn-in renderer and the web player.

Comments flow file -> `comments.load_comments` -> `layout.layout` (a Schedule) -> `render` (burned into a
video, behind the people) or `player` (a local web page that applies the mask track in the browser).
"""
