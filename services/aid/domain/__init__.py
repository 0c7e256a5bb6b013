"""Aid rules in plain Python: who counts as enrolled, when instalments stop."""
