"""Adherence report and dashboard views: the document, its charts, HTML, the dashboard routes.

Modules are imported on use (``icp_sync.report.html``, ``icp_sync.report.dashboard``, ...),
so reading the config section (:mod:`icp_sync.report.config`) does not load Plotly or Starlette.
"""
