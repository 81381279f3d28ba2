"""The headless command line: the same jobs and the same run store as the dashboard."""
