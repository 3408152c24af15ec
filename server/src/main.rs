use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ticketwire::{auth::Role, config::Config, retention};

/// ticketwire: a support-ticketing backend where every change reaches people the moment it happens.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML config file (default: ./ticketwire.toml when present). Environment variables win.
    #[arg(long, global = true, env = "TICKETWIRE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create an admin account (or fail if the email is taken).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Remove now what retention removes in the background: old events, read notifications and
    /// finished webhook deliveries (see `[retention]`); prints the count per table.
    Prune {
        /// Only count what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the SQLite database to FILE, consistently, while the server runs (PostgreSQL: use pg_dump).
    Backup { file: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ticketwire::memory::return_large_blocks_to_os();
    ticketwire::telemetry::init_tracing();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            // On stdout, so scripts and tests that start it on port 0 learn where it is.
            println!("ticketwire listening on http://{}", listener.local_addr()?);
            ticketwire::run(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            ticketwire::db::connect_and_migrate(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin { email, password, name } => {
            let user = ticketwire::cli::create_user(&config, &email, &password, &name, Role::Admin).await?;
            println!("created admin {} ({})", user.email, user.id);
            Ok(())
        }
        Command::Prune { dry_run } => {
            let mode = if dry_run { retention::Mode::DryRun } else { retention::Mode::Remove };
            let r = ticketwire::cli::prune(&config, mode).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            println!("{verb}:");
            println!("  events              {}", r.events);
            println!("  notifications       {}", r.notifications);
            println!("  webhook_deliveries  {}", r.webhook_deliveries);
            println!("  webhook_attempts    {}", r.webhook_attempts);
            Ok(())
        }
        Command::Backup { file } => {
            let r = ticketwire::cli::backup(&config, &file).await?;
            println!(
                "backed up to {} ({} bytes, SQLite {}, {} ms)",
                file.display(),
                r.bytes,
                r.sqlite_version,
                r.took.as_millis()
            );
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
