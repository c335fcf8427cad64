"""Samia Tarot back end."""
