"""`make bench`: blink's in-database scoring measured against its references, in one run."""
