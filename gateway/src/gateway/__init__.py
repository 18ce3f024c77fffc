"""Zizhu REST gateway."""
