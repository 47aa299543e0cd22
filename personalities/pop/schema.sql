-- The demo's user table (SQLite). Passwords are stored as given: SQLite has no
-- password function; use pop-postgres or pop-mysql for hashed passwords.
CREATE TABLE IF NOT EXISTS EMailUsers (
    user TEXT PRIMARY KEY,
    password TEXT NOT NULL,
    maildrop TEXT NOT NULL
);
