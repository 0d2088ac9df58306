"""Home Assistant-free library of mam_guard.

Everything here is plain asyncio/aiohttp code: the MyAnonamouse client and its models, the page
parser, the qBittorrent adapter and the pure emergency decision logic. Nothing in this package may
import ``homeassistant`` (a test enforces it), so it can be tested and benchmarked on its own.
"""
