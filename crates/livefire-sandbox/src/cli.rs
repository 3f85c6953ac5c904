//! The `livefire sandbox` subcommands: their flags, and the one function that runs them
//! and maps the outcome to an exit code (0 done, 1 `status` found a component not
//! answering, 3 a setup error: nothing is left running).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use livefire_core::exit::Exit;

use crate::sandbox::{self, Launcher, StoreChoice, UpOptions};

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start PostgreSQL (primary + streaming replica), the token service, the orders
    /// API and the failover helper on free loopback ports; SQLite when PostgreSQL is absent.
    Up(UpArgs),
    /// Stop everything the sandbox started (the data stays until the next `up`).
    Down(DirArgs),
    /// Show each component, its address, and whether it answers (exit 1 if one does not).
    Status(StatusArgs),
    /// Bring a stopped PostgreSQL node back, never as a second primary: as a standby of
    /// the promoted node (pg_rewind), or as it was when nothing was promoted.
    Rejoin(RejoinArgs),
    /// Restart a service of the sandbox (orders, token, failover) with its first command line.
    Restart(RejoinArgs),
    /// The orders API (started by `up`).
    Service(ServiceArgs),
    /// The token service (started by `up`).
    Token(TokenArgs),
    /// The failover helper (started by `up`).
    Failover(FailoverArgs),
    /// A small dependency-free HTTP server: GET /health answers 200 `ok`.
    Http {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: String,
        /// Acknowledge but forget every Nth item created with POST /items (0: never),
        /// so a data-loss check has something to find.
        #[arg(long, default_value_t = 0)]
        lose_every: u64,
    },
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The sandbox folder: its record (sandbox.json), logs and data.
    #[arg(long, env = "LIVEFIRE_SANDBOX_DIR", default_value_os_t = default_dir())]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// The orders store: auto (PostgreSQL when installed, else SQLite), postgres, sqlite.
    #[arg(long, value_enum, default_value = "auto")]
    pub store: StoreChoice,
    /// Switch on the orders API's planted defects (docs/sandbox.md): authorization that
    /// fails open while the token service is unreachable, writes acknowledged before
    /// they are durable.
    #[arg(long)]
    pub defects: bool,
    /// Promote the replica when no primary has answered for this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub failover_after: Duration,
    /// Address of the orders API (default: a free loopback port).
    #[arg(long, value_name = "ADDR")]
    pub api_listen: Option<String>,
    /// Address of the token service (default: a free loopback port).
    #[arg(long, value_name = "ADDR")]
    pub token_listen: Option<String>,
    /// Address the orders API calls for authorization, e.g. a livefire proxy in front
    /// of the token service (default: the token service itself).
    #[arg(long, value_name = "ADDR")]
    pub token_via: Option<String>,
    /// PostgreSQL's bin directory (default: found on PATH or under /usr/lib/postgresql).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// Print the sandbox record (sandbox.json) instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// One JSON object: the record and each component's state.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RejoinArgs {
    /// The component: `primary` or `replica` for rejoin; `orders`, `token` or `failover` for restart.
    pub name: String,
    #[command(flatten)]
    pub dir: DirArgs,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: String,
    /// host:port of the token service (or a proxy in front of it).
    #[arg(long)]
    pub token_addr: String,
    /// PostgreSQL DSN (several hosts allowed); the API insists on a read-write session.
    #[arg(long, conflicts_with = "sqlite", required_unless_present = "sqlite")]
    pub dsn: Option<String>,
    /// SQLite file, instead of PostgreSQL.
    #[arg(long)]
    pub sqlite: Option<PathBuf>,
    /// Switch on the planted defects.
    #[arg(long)]
    pub defects: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: String,
    /// A token it accepts, as USER=TOKEN (repeatable).
    #[arg(long = "token", value_parser = crate::token::parse_token)]
    pub tokens: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Promote a standby when no primary has answered for this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub after: Duration,
}

/// `livefire-sandbox`: the same subcommands as `livefire sandbox`.
#[derive(Debug, Parser)]
#[command(name = "livefire-sandbox", about = "livefire's local targets", long_about = None)]
struct Standalone {
    #[command(subcommand)]
    command: SandboxCommand,
}

/// The default sandbox folder: `$TMPDIR/livefire-sandbox` (the `postgres` user must be
/// able to reach it, which a root-only home is not).
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("livefire-sandbox")
}

/// This program, with `prefix` leading to the sandbox subcommands.
pub fn self_launcher(prefix: &[&str]) -> Launcher {
    Launcher {
        program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("livefire")),
        prefix: prefix.iter().map(|s| s.to_string()).collect(),
    }
}

/// Parses the arguments of `livefire-sandbox` and runs the subcommand.
pub fn main_with_args<I, T>(args: I, launcher: Launcher) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Standalone::try_parse_from(args) {
        Ok(s) => run(s.command, launcher),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                Exit::Invalid
            } else {
                Exit::Ok
            }
        }
    }
}

/// Runs one sandbox subcommand.
pub fn run(command: SandboxCommand, launcher: Launcher) -> Exit {
    let mut out = std::io::stdout();
    let result = match command {
        SandboxCommand::Up(a) => {
            let opts = UpOptions {
                dir: a.dir.dir,
                store: a.store,
                defects: a.defects,
                failover_after: a.failover_after,
                api_listen: a.api_listen,
                token_listen: a.token_listen,
                token_via: a.token_via,
                pg_bin: a.pg_bin,
                launcher,
            };
            sandbox::up(&opts, &mut out).and_then(|sb| {
                if a.json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&sb).unwrap_or_default()
                    )
                    .ok();
                    Ok(Exit::Ok)
                } else {
                    writeln!(out, "sandbox up in {}", sb.dir.display()).ok();
                    print_status(&sb.dir, false, &mut out)
                }
            })
        }
        SandboxCommand::Down(a) => sandbox::down(&a.dir, &mut out).map(|()| Exit::Ok),
        SandboxCommand::Status(a) => print_status(&a.dir.dir, a.json, &mut out),
        SandboxCommand::Rejoin(a) => {
            sandbox::rejoin(&a.dir.dir, &a.name, &mut out).map(|()| Exit::Ok)
        }
        SandboxCommand::Restart(a) => {
            sandbox::restart(&a.dir.dir, &a.name, &mut out).map(|()| Exit::Ok)
        }
        SandboxCommand::Failover(a) => {
            crate::failover::watch(&a.dir.dir, a.after).map(|()| Exit::Ok)
        }
        SandboxCommand::Service(a) => return serve_orders(a),
        SandboxCommand::Token(a) => {
            return block_on(crate::token::serve(&a.listen, a.tokens));
        }
        SandboxCommand::Http { listen, lose_every } => crate::serve_http(&listen, lose_every)
            .map(|()| Exit::Ok)
            .map_err(|e| crate::SandboxError::Setup(e.to_string())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("livefire sandbox: {e}");
            Exit::Invalid
        }
    }
}

fn serve_orders(a: ServiceArgs) -> Exit {
    let store = match (&a.dsn, &a.sqlite) {
        (Some(dsn), _) => {
            crate::store::PgStore::new(dsn, 4).map(|s| crate::store::Store::Postgres(Box::new(s)))
        }
        (None, Some(file)) => {
            crate::store::SqliteStore::open(file).map(crate::store::Store::Sqlite)
        }
        (None, None) => Err(crate::store::StoreError("give --dsn or --sqlite".into())),
    };
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            eprintln!("livefire sandbox service: {e}");
            return Exit::Invalid;
        }
    };
    let config = crate::service::ServiceConfig {
        listen: a.listen,
        token_addr: a.token_addr,
        defects: a.defects,
    };
    block_on(crate::service::serve(config, store))
}

fn block_on(f: impl std::future::Future<Output = std::io::Result<()>>) -> Exit {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livefire sandbox: cannot start a runtime: {e}");
            return Exit::Invalid;
        }
    };
    match rt.block_on(f) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("livefire sandbox: {e}");
            Exit::Invalid
        }
    }
}

fn print_status(
    dir: &std::path::Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, crate::SandboxError> {
    let (sb, lines) = sandbox::status(dir)?;
    let all = lines.iter().all(|l| l.answers);
    if json {
        let v = serde_json::json!({ "sandbox": sb, "components": lines });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )
        .ok();
    } else {
        writeln!(
            out,
            "sandbox in {} ({}, store {}{})",
            sb.dir.display(),
            if sb.up { "up" } else { "down" },
            sb.store,
            if sb.defects { ", defects ON" } else { "" }
        )
        .ok();
        for l in &lines {
            writeln!(
                out,
                "  {:<9} {:<8} {:<24} {:<11} {}",
                l.name,
                l.kind,
                l.address.as_deref().unwrap_or("-"),
                l.pid.map_or("-".to_string(), |p| format!("pid {p}")),
                if l.answers {
                    format!("answers: {}", l.detail)
                } else {
                    format!("DOES NOT ANSWER: {}", l.detail)
                }
            )
            .ok();
        }
        if let Some(dsn) = &sb.dsn {
            writeln!(out, "  dsn       {dsn}").ok();
        }
        for (user, token) in &sb.tokens {
            writeln!(out, "  token     {user}: Authorization: Bearer {token}").ok();
        }
    }
    Ok(if all { Exit::Ok } else { Exit::Deviated })
}

/// A flag's duration that is not `500ms`, `3s` or `2m`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: write e.g. 500ms, 3s, 2m")]
pub struct DurationError(String);

/// `250ms`, `3s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| DurationError(s.to_owned()))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        _ => None,
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| DurationError(s.to_owned()))
}
