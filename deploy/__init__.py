"""Running xueji: `make run` (run.py), demo data (seed.py), set-up scripts, production compose."""
