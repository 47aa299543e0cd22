-- pop-mysql: the seed's EMailUsers table on MariaDB or MySQL. Load with
--   mariadb -h 127.0.0.1 -u root test < personalities/pop-mysql/schema.sql
-- Passwords are stored as PASSWORD(password), as the seed's query expects.
CREATE TABLE IF NOT EXISTS EMailUsers (
    user VARCHAR(64) PRIMARY KEY,
    password VARCHAR(64) NOT NULL,
    maildrop VARCHAR(255) NOT NULL
);
-- The demo user; its Maildir is created by personalities/pop/setup-demo.
INSERT IGNORE INTO EMailUsers VALUES ('demo', PASSWORD('demo'), 'demo/Maildir');
