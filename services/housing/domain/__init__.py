"""Housing rules in plain Python: the bed inventory, who may take which bed, when a bed is freed."""
