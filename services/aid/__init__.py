"""Aid centre (资助中心): enrolled, needy and aided registers (A1–A5)."""
