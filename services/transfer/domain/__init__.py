"""Transfer rules in plain Python: matching a request to a record, who may transfer out."""
