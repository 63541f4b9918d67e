"""Campaign reports: accounting summaries, the cost projection to 10^9 sources, HTML pages."""
