"""The HTTP submission API (FastAPI). It never imports torch."""
