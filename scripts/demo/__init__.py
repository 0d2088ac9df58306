"""The mam_guard demo: a product too (``scripts/develop``), and what ``scripts/e2e`` drives.

- :mod:`scripts.demo.stack`: the MAM simulator, a real qBittorrent and a real Home Assistant with
  mam_guard set up through its config flow; the supervisor that watches them.
- :mod:`scripts.demo.__main__`: the launcher (``python -m scripts.demo``): the guide and the
  timed emergency scenario of the interactive demo, or the end-to-end checks.
- :mod:`scripts.demo.checks`: the end-to-end scenarios, checked through HA's REST API and
  qBittorrent's API, with a screenshot of each step.
- :mod:`scripts.demo.browser`: headless Chromium over the DevTools protocol (HA's frontend).
"""
