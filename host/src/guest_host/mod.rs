//! What the host gives a module instance: the store data every instance carries, and the
//! host side of each imported interface of the contract.

pub mod config;
pub mod connection;
pub mod database;
pub mod filesystem;
pub mod heap;
pub mod linker;
pub mod log;
pub mod maildrop;
pub mod prestart;
pub mod send_file;
pub mod start_tls;
pub mod state;
pub mod stats;
pub mod stdio;
pub mod streams;
pub mod transport;
