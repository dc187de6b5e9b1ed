"""The analytic queries and their reports (text, Markdown, charts)."""
