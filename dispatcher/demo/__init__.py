"""`nightshift demo`: a scheduled sample pipeline and real drift scans of it on an offline AWS (moto)."""
