# Helpers for the bench's host-side tests.
import sqlite3


def db_rows(path, sql):
    """Rows of `sql` read straight from the bench's SQLite file."""
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
