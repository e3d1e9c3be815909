"""omoi's HTTP API: the runs of one repository over their logs, authenticated, with a live stream.
`omoi serve` starts it (`serve.py`); `app.py` has the routes."""
