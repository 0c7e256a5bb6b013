"""Roster rules in plain Python: statuses, student records, the clearance contract."""
