//! The command line (§8). Every flag also reads a `TOKENWARD_…` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "tokenward",
    version,
    about = "A self-hosted API token server: scoped, expiring, revocable tokens in one binary and one SQLite file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How log lines on standard error are written: text, or one JSON
    /// object per line with the same fields.
    #[arg(long, global = true, env = "TOKENWARD_LOG_FORMAT", value_enum,
          default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Administration from the command line.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Copy the database to a new file while the server runs, then check
    /// the copy and print its size.
    Backup(BackupArgs),
    /// Check the database's integrity and print its schema version; exits
    /// with an error when there are problems.
    Check(DbArg),
    /// Copy a SQLite instance into an empty PostgreSQL database, keeping
    /// every id, number, token and session. Stop the server first.
    MigrateToPostgres {
        /// The SQLite database file to copy.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database, postgres://user:password@host:port/db;
        /// it must hold no account yet.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// The new file to write; it must not exist yet.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DbArg {
    /// The SQLite database file (it and its folder are created on first
    /// start), or a PostgreSQL URL, postgres://user:password@host:port/db,
    /// to run several nodes on one database.
    #[arg(long, env = "TOKENWARD_DB", default_value = "./tokenward.db")]
    pub db: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback makes the first sign-up
    /// need the setup code printed at start.
    #[arg(long, env = "TOKENWARD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub db: DbArg,

    /// Seconds between sweeps (purge of old tokens and sessions); last-used
    /// times are flushed at least every 60 seconds regardless.
    #[arg(long, env = "TOKENWARD_SWEEP_INTERVAL", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub sweep_interval: u64,

    /// Failed verifications allowed per client address per minute (0: no limit).
    #[arg(long, env = "TOKENWARD_VERIFY_FAIL_LIMIT", default_value_t = 120)]
    pub verify_fail_limit: usize,

    /// Verified tokens kept in memory, about 1 KiB each (0: every
    /// verification reads the database).
    #[arg(long, env = "TOKENWARD_VERIFY_CACHE", default_value_t = crate::store::DEFAULT_VERIFY_CACHE)]
    pub verify_cache: usize,

    /// Seconds a client has to send each request's headers; a kept-alive
    /// connection idle that long between requests is closed too.
    #[arg(long, env = "TOKENWARD_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=30))]
    pub header_timeout: u64,

    /// Serve Prometheus metrics at GET /metrics on this address, a listener
    /// of its own (off unless set). Keep it off the public network.
    #[arg(long, env = "TOKENWARD_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Trust the last X-Forwarded-For entry as the client address (set this
    /// only behind a reverse proxy that sets it).
    #[arg(long, env = "TOKENWARD_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Tests only: seconds added to the clock, so that expiry, grace and
    /// purge times pass without waiting. Hidden from --help.
    #[arg(long, hide = true, default_value_t = 0, allow_negative_numbers = true)]
    pub clock_offset: i64,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account, reading its password as one line from standard
    /// input. The first account of an instance is its admin.
    CreateAccount {
        /// The new account's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Set a new password, read as one line from standard input, and end
    /// every session of the account.
    ResetPassword {
        /// The account's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Disable an account: its sessions end and its tokens stop working
    /// until it is enabled again. A running server notices within a second.
    Disable {
        /// The account's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Enable a disabled account again; its tokens work again.
    Enable {
        /// The account's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
}
