//! End-to-end tests: each starts the real `serverkit` binary on a personality written to a
//! temporary directory and talks to it over real sockets.
//!
//! - `harness`: starting the server, waiting for it, killing it on drop, free ports.
//! - `compile_cache`: the compile cache in its default place for a root start: no
//!   warning, loaded on the next start; a forged entry planted as the service user (random
//!   bytes, another module's artifact) neither run nor kept; hot swaps cached after the drop.
//! - `daemontools`: the shipped service directory under a real svscan and svc.
//! - `disk_faults`: unreadable files under shttp's doc_root, a full and a read-only
//!   filesystem under pop's maildrops, a full compile cache (tmpfs mounts; root only).
//! - `echo`: the echo module served to many clients; a trap, an infinite loop and an idle
//!   client each end only their own session; back-pressure at `max_sessions`.
//! - `fleet_fixture`: two nodes on one PostgreSQL users table and one Maildir tree, taking
//!   the PROXY protocol from 127.0.0.1; HAProxy in front; clients from 127.0.0.2.
//! - `fleet`: HAProxy's send-proxy and send-proxy-v2 carry the real client to pop's log and
//!   shttp's access log; only proxy_protocol_from may connect; bad headers end only their
//!   connection; the Maildir lock and deletions hold across the two nodes.
//! - `fleet_failover`: one node killed mid-load behind HAProxy: new clients go to the
//!   other, no message lost or deleted twice.
//! - `hotswap`: module files replaced under load (alternating echo and the test-only
//!   echo-next), broken replacements refused, SIGHUP rereading c11n.
//! - `hotswap_modules`: module files added and removed while serving; a POP3 session held
//!   across a swap of pop.
//! - `keepalive`: busy keep-alive connections outlive the CPU budget, the wall time ends a
//!   session between requests, idle keep-alive sessions make room at `max_sessions`
//!   (POP3 sessions do not).
//! - `lifecycle`: SIGTERM drains live sessions; exit codes.
//! - `privileges`: root policy, identity, the root drop and the seccomp filter on every
//!   thread, `seccomp = false` (needs root; CI runs as root).
//! - `cli`: `check`, `inspect`, `--help`, `--version`, broken configurations.
//! - `carry_over`: what a module holds survives a reload and a swap: POP3S, STLS and
//!   HTTPS keep working; one descriptor per granted directory.
//! - `report`: the status report on SIGUSR1 and SIGALRM, parsed.
//! - `hostile`: a module attacking its host (memory, stack, handles, privileges, the log)
//!   beside echo, which keeps being served.
//! - `metrics`: the metrics endpoint: promtool and the OpenMetrics parser pass it, its
//!   figures follow sessions and swaps, it refuses anything but `GET /metrics`, and a real
//!   Prometheus scrapes it and answers a query with a live value.
//! - `limits`: per-module limits lowered in c11n (memory, module memory, handles, wall,
//!   CPU, buffered bytes, log events) end only the session past them; the pool's size.
//! - `http`: shttp helpers: a personality with a known site, a raw HTTP client.
//! - `shttp`: shttp on the wire: files, HEAD, persistence, pipelining, directories,
//!   ranges, conditionals, the constant response.
//! - `shttp_clients`: curl, wget, lftp, Python http.client and h11 against shttp.
//! - `shttp_corpus`: traversal and smuggling corpora, oversize heads, slowloris.
//! - `shttp_expect`: `Expect: 100-continue` with curl and a strict raw client.
//! - `shttp_hostile`: slowhttptest's slowloris and slow read while a client keeps being
//!   served, connection floods beyond `max_sessions`, the corpora from many clients at once.
//! - `shttp_nginx`: shttp and nginx on the same site give the same answers, listings
//!   (HTML columns and JSON) included.
//! - `shttp_options`: `hidden_files`, `autoindex_format = json`, `cache_control`,
//!   `hsts_max_age`, the access log's escaping, bad values refused at startup.
//! - `pop_fixture`: Maildirs, a user table per test on SQLite, PostgreSQL or MariaDB,
//!   the pop server and a raw POP3 client.
//! - `pop`: the pop module on the embedded database: the command/response corpus
//!   (`tests/pop/corpus.txt`) and inline exchanges, SASL PLAIN, long messages,
//!   injection attempts and maildrops escaping the root.
//! - `pop_big`: messages without `,W=` far beyond an instance's memory: several of 20+ MiB
//!   listed and retrieved, one of 1 GiB retrieved byte-exact by poplib with the server's
//!   peak RSS measured (printed).
//! - `pop_hostile`: password guessing paced and without a timing difference between
//!   unknown users and wrong passwords, overlong lines, command floods, a client that
//!   never reads, connection floods beyond `max_sessions`.
//! - `pop_safety`: deletions only at QUIT (drop, kill -9, idle timeout delete nothing),
//!   stable UIDLs, [IN-USE].
//! - `pop_clients`: poplib, curl, mpop on every driver; the shipped pop personalities.
//! - `pop_dovecot`: hashes made by Dovecot's `doveadm pw` (SHA512-CRYPT, BLF-CRYPT, ARGON2ID,
//!   PBKDF2, SSHA512, PLAIN and more) checked by the host, through poplib on every driver;
//!   a planted hash above the cost caps refused.
//! - `pop_guessing`: parallel guesses from one address slowed progressively, the cap on
//!   unauthenticated sessions per address, a bystander from 127.0.0.2 served throughout.
//! - `pop_drivers`: the login path on PostgreSQL and MariaDB (TCP and Unix sockets),
//!   databases down at start and restarted mid-run (through a proxy the test controls),
//!   an SQLite file missing at start.
//! - `newcomer`: a newcomer's path: `serverkit new` for Rust and Python, build, `check`,
//!   run, a client served, a hot swap preflighted with `check --module`.
//! - `python_module`: a module written in Python (componentize-py from the test venv):
//!   echoed lines, concurrent sessions, an uncaught exception, the report, inspect, check.
//! - `scale`: 10 000 idle sessions in one server (5 000 POP3 logged in, 5 000 HTTP
//!   keep-alive), then 1 000 transferring at once; resident memory per idle session printed.
//! - `sandbox`: what a guest can reach (test-only `probe` module), grants, hook traps,
//!   the contract version rule, module files over built-ins.
//! - `sandbox_attacks`: issue 12's holes attacked by the test-only `intruder` and
//!   `grant_defaults` modules and planted symlinks and FIFOs (grants, host memory,
//!   descriptors, maildrops, SQLite, the log, CPU, report hooks), echo served throughout.
//! - `store`: the keyed store through the shipped `kv` module: two sessions, concurrent
//!   increments, a hot swap, a SIGHUP reload and a restart (persisted) keep it; huge keys
//!   and values refused; the test-only `hostile` filling its store refused at `store_mb`
//!   while kv keeps serving.
//! - `syslog`: the remote syslog bypass, with and without a collector; the status report
//!   at the collector; nothing lost when a collector comes back.
//! - `tls`: HTTPS terminated by the host, the redirect to it; bad certificates refused at
//!   startup; an IP address as SNI logged at debug; certificates made for the tests.
//! - `tls_pop`: POP3S and STLS (s_client, curl, poplib), a command injected before the
//!   STLS handshake, `plaintext_login`, handshake counters in the report.
//! - `vtstats`: the report on a pseudo-terminal every interval.

mod carry_over;
mod cli;
mod compile_cache;
mod daemontools;
mod disk_faults;
mod echo;
mod fleet;
mod fleet_failover;
mod fleet_fixture;
mod harness;
mod hostile;
mod hotswap;
mod hotswap_modules;
mod http;
mod keepalive;
mod lifecycle;
mod limits;
mod metrics;
mod newcomer;
mod pop;
mod pop_big;
mod pop_clients;
mod pop_dovecot;
mod pop_drivers;
mod pop_fixture;
mod pop_guessing;
mod pop_hostile;
mod pop_safety;
mod privileges;
mod python_module;
mod report;
mod sandbox;
mod sandbox_attacks;
mod scale;
mod shttp;
mod shttp_clients;
mod shttp_corpus;
mod shttp_expect;
mod shttp_hostile;
mod shttp_nginx;
mod shttp_options;
mod store;
mod syslog;
mod tls;
mod tls_pop;
mod vtstats;
