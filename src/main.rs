//! The `tokenward` executable: parses the command line, starts logging,
//! binds the listener and hands over to the library.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokenward::config::{AdminCommand, BackupArgs, Cli, Command, DbArg, ServeArgs};
use tokenward::logging::{LogFormat, RequestLog};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    let filter =
        EnvFilter::try_from_env("TOKENWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, _flush_on_exit) = match tokenward::logging::batched_stderr(cli.log_format) {
        Ok(pair) => pair,
        Err(err) => {
            eprintln!("error: cannot start the log writer: {err}");
            return ExitCode::FAILURE;
        }
    };
    let request_log = writer.request_log();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match cli.log_format {
        LogFormat::Text => logs.event_format(tokenward::logging::LineFormat).init(),
        LogFormat::Json => logs.event_format(tokenward::logging::JsonFormat).init(),
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(tokenward::worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args, request_log).await,
            Command::Admin(AdminCommand::CreateAccount { email, db }) => {
                create_account(&email, &db.db).await
            }
            Command::Admin(AdminCommand::ResetPassword { email, db }) => {
                reset_password(&email, &db.db).await
            }
            Command::Admin(AdminCommand::Disable { email, db }) => {
                set_disabled(&email, &db.db, true).await
            }
            Command::Admin(AdminCommand::Enable { email, db }) => {
                set_disabled(&email, &db.db, false).await
            }
            Command::Backup(args) => backup(args),
            Command::Check(db) => check(db),
            Command::MigrateToPostgres { from, to } => migrate_to_postgres(from, to).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A JSON log stays all JSON, the last line included.
            match log_format {
                LogFormat::Text => eprintln!("error: {err:#}"),
                LogFormat::Json => tracing::error!("{err:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs, request_log: RequestLog) -> anyhow::Result<()> {
    if args.clock_offset != 0 {
        tokenward::core::time::set_clock_offset(args.clock_offset);
        tracing::warn!(
            seconds = args.clock_offset,
            "the clock is offset for testing; never run a real instance like this"
        );
    }
    let listener = tokenward::listen(args.addr).with_context(|| {
        format!(
            "cannot listen on {} (set --addr or TOKENWARD_ADDR)",
            args.addr
        )
    })?;
    let config = tokenward::ServerConfig {
        db: args.db.db,
        sweep_interval: Duration::from_secs(args.sweep_interval),
        verify_fail_limit: args.verify_fail_limit,
        trust_proxy: args.trust_proxy,
        verify_cache: args.verify_cache,
        request_log: Some(request_log),
        header_timeout: Duration::from_secs(args.header_timeout),
        metrics_addr: args.metrics_addr,
    };
    tokenward::run(listener, config, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// One line from standard input, asking for it first on a terminal.
fn read_password(email: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprintln!("Password for {email} (one line):");
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("while reading the password from standard input")?;
    Ok(password.trim_end_matches(['\n', '\r']).to_owned())
}

async fn create_account(email: &str, db: &std::path::Path) -> anyhow::Result<()> {
    let password = read_password(email)?;
    let account = tokenward::admin::create_account(db, email, password).await?;
    let role = if account.instance_admin {
        " (instance admin)"
    } else {
        ""
    };
    println!("created account {} {}{role}", account.email, account.id);
    Ok(())
}

async fn reset_password(email: &str, db: &std::path::Path) -> anyhow::Result<()> {
    let password = read_password(email)?;
    let account = tokenward::admin::reset_password(db, email, password).await?;
    println!(
        "set a new password for {} {}; its sessions have ended",
        account.email, account.id
    );
    Ok(())
}

async fn set_disabled(email: &str, db: &std::path::Path, disabled: bool) -> anyhow::Result<()> {
    let account = tokenward::admin::set_disabled(db, email, disabled).await?;
    if disabled {
        println!(
            "disabled {} {}: its sessions have ended and its tokens answer DISABLED",
            account.email, account.id
        );
    } else {
        println!("enabled {} {}", account.email, account.id);
    }
    Ok(())
}

async fn migrate_to_postgres(from: std::path::PathBuf, to: String) -> anyhow::Result<()> {
    if !tokenward::store::postgres::is_url(&to) {
        anyhow::bail!("--to must be a PostgreSQL URL (postgres://user:password@host:port/db)");
    }
    let shown = tokenward::store::postgres::shown_url(&to);
    let copied =
        tokio::task::spawn_blocking(move || tokenward::store::copy::sqlite_to_postgres(&from, &to))
            .await
            .context("while copying")??;
    for (table, rows) in &copied.rows {
        println!("{table}: {rows} rows");
    }
    println!("copied into {shown}; start the nodes with --db on it");
    Ok(())
}

/// Backups and checks of a PostgreSQL database are PostgreSQL's own tools'.
fn refuse_postgres(db: &std::path::Path, command: &str) -> anyhow::Result<()> {
    if db.to_str().is_some_and(tokenward::store::postgres::is_url) {
        anyhow::bail!(
            "tokenward {command} works on a SQLite file; for PostgreSQL use its own tools \
             (pg_dump for a backup, amcheck for a check)"
        );
    }
    Ok(())
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    refuse_postgres(&args.db.db, "backup")?;
    let written = tokenward::store::SqliteStore::backup(&args.db.db, &args.out)?;
    let out = args.out.display();
    if !written.problems.is_empty() {
        for problem in &written.problems {
            println!("{problem}");
        }
        anyhow::bail!(
            "the copy {out} failed its integrity check ({} problems above); \
             run tokenward check on {}",
            written.problems.len(),
            args.db.db.display()
        );
    }
    println!(
        "backup written to {out}: {} bytes, integrity ok",
        written.bytes
    );
    Ok(())
}

fn check(db: DbArg) -> anyhow::Result<()> {
    refuse_postgres(&db.db, "check")?;
    let checked = tokenward::store::SqliteStore::check(&db.db)?;
    match checked.schema_version {
        Some(version) if version > checked.known_version => println!(
            "schema version {version} (newer than this tokenward, which knows up to {})",
            checked.known_version
        ),
        Some(version) => println!(
            "schema version {version} (this tokenward knows up to {})",
            checked.known_version
        ),
        None => println!("schema version unknown"),
    }
    if checked.problems.is_empty() {
        println!("ok");
        return Ok(());
    }
    for problem in &checked.problems {
        println!("{problem}");
    }
    anyhow::bail!(
        "{} has {} problems (listed above)",
        db.db.display(),
        checked.problems.len()
    )
}
