"""Renderers: each reads only the results document (and never imports a framework)."""
