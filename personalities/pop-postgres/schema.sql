-- pop-postgres: the user table on PostgreSQL. Load with
--   psql -h 127.0.0.1 -U postgres test -f personalities/pop-postgres/schema.sql
-- Passwords are stored as md5(password) (built into PostgreSQL); the query in c11n
-- compares md5(%p), with %p a bound parameter.
CREATE TABLE IF NOT EXISTS email_users (
    username TEXT PRIMARY KEY,
    password TEXT NOT NULL,
    maildrop TEXT NOT NULL
);
-- The demo user; its Maildir is created by personalities/pop/setup-demo.
INSERT INTO email_users VALUES ('demo', md5('demo'), 'demo/Maildir')
    ON CONFLICT (username) DO NOTHING;
