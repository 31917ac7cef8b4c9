"""Relais pipeline core: flow model, detection, split, routing, return flows, store."""
