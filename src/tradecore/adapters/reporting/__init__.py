"""Reading the database back for people: the live monitor and the post-run report."""
