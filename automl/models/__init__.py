"""Backbones, every registered custom layer, precision and devices."""
