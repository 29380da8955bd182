"""`nightshift report`: the reporting views of sql/views/ in the terminal (rich) and as one HTML page.

build.py reads the views (one named query each, sql/queries/report.sql) into a Report;
terminal.py prints its summary; html.py renders the page from templates/report.html.j2.
"""
