"""Issue 7: bad input, hostile clients, faults, backups - with nothing left behind."""
