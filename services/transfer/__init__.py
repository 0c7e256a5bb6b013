"""Transfers (转学) between institutions and inside one (T1–T7)."""
