"""Create the database named in DATABASE_URL if it does not exist (the test run and health checks connect to it)."""

import os
import sys

import dj_database_url
import psycopg
from psycopg import sql


def main() -> None:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return  # embedded PostgreSQL: gnomon.embedded creates its database
    config = dj_database_url.parse(url)
    name = config["NAME"]
    params = {k: v for k, v in {"host": config.get("HOST"), "port": config.get("PORT"), "user": config.get("USER"),
                                  "password": config.get("PASSWORD")}.items() if v}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
