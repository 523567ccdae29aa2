"""Shipped YAML configs (models, kd, tracker, data, train), installed as package data."""
