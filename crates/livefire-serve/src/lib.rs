//! `livefire serve`: the organisation's console over livefire. An HTTP API (JSON,
//! `openapi.yaml`) and a web UI served from the binary; runs are child `livefire run`
//! processes with the server's `$LIVEFIRE_HOME`, so the ledger, `recover` and `halt`
//! apply to them; tokens with roles guard every change; the store is one SQLite file.

pub mod api;
pub mod approval;
pub mod auth;
mod conn;
mod gameday;
mod held;
mod live;
pub mod runs;
pub mod schedule;
pub mod server;
pub mod store;
pub mod trends;
mod ui;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use livefire_core::exit::Exit;

use crate::auth::Role;
use crate::store::Store;

/// `livefire serve`: flags, or `token ...`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address to listen on; a port of 0 picks a free one (printed).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: String,
    /// The server's folder: its store (serve.db), uploaded experiments and run folders
    /// (default: $LIVEFIRE_HOME/serve).
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Serve HTTPS with this certificate (PEM, chain first); needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Listen off loopback without TLS (tokens then cross the network in clear).
    #[arg(long)]
    pub allow_plain_http: bool,
    /// A run in an environment marked `production: true` waits until a second person
    /// (another operator or admin) approves it.
    #[arg(long)]
    pub require_approval: bool,
    /// A request for approval nobody approves or rejects within this long expires: it
    /// never runs (with --require-approval), e.g. 24h, 30m.
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = livefire_core::units::parse_duration)]
    pub approval_expires: Duration,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Manage the tokens people and scripts use.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the schedules the server fires (cron, UTC).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Fire an uploaded experiment on a cron schedule (UTC), e.g. `0 9 1 * *`.
    Create {
        /// How the run index and the audit log name it (`schedule NAME`).
        #[arg(long)]
        name: String,
        /// minute hour day-of-month month day-of-week; a 6th field first is seconds.
        #[arg(long)]
        cron: String,
        /// The uploaded experiment to run.
        #[arg(long)]
        experiment: String,
        /// One of the file's `environments:`.
        #[arg(long)]
        env: Option<String>,
        /// A variable for the run, as `livefire run --var`.
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = livefire_spec::parse_var)]
        vars: Vec<(String, String)>,
        /// The operator or admin token the schedule runs for: its holder cannot approve
        /// the schedule's production firings. Needed when `--env` is production.
        #[arg(long, value_name = "TOKEN")]
        owner: Option<String>,
    },
    /// List the schedules, their next firing and what the last one did.
    List,
    /// Delete a schedule by name.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        /// viewer: sees; operator: also uploads, starts and stops runs; admin: also
        /// manages tokens.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Who or what holds it, as the audit log names it (default: ROLE-TIME).
        #[arg(long)]
        name: Option<String>,
        /// Refused after this long, e.g. 30d, 12h (default: never).
        #[arg(long, value_parser = livefire_core::units::parse_duration)]
        expires: Option<Duration>,
    },
    /// List the tokens (names, roles, expiry; never the tokens).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// Runs `livefire serve` (or its `token` subcommand). `exe` is the `livefire` program
/// runs are started with. Writes to `out` and `err`; returns the exit.
pub fn command(args: &ServeArgs, exe: PathBuf, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| livefire_engine::home::home().join("serve"));
    // Run folders are recorded by this path: make it absolute so it means the same later.
    let data = std::path::absolute(&data).unwrap_or(data);
    let store = match Store::open(&data) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let _ = writeln!(err, "livefire serve: {e}");
            return Exit::Invalid;
        }
    };
    match &args.command {
        Some(ServeCommand::Token(t)) => token(t, &store, out, err),
        Some(ServeCommand::Schedule(s)) => schedule::command(s, &store, exe, data, out, err),
        None => serve(args, exe, data, store, out, err),
    }
}

fn token(cmd: &TokenCommand, store: &Store, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    match cmd {
        TokenCommand::Create {
            role,
            name,
            expires,
        } => {
            let role = Role::from(*role);
            let name = name
                .clone()
                .unwrap_or_else(|| format!("{}-{}", role.as_str(), auth::unix_now()));
            if let Err(why) = api::check_name(&name) {
                let _ = writeln!(err, "livefire serve token create: --name {why}");
                return Exit::Invalid;
            }
            match auth::create(store, &name, role, *expires) {
                Ok(token) => {
                    let _ = store.audit(
                        &format!("{} (shell)", livefire_engine::recover::os_user()),
                        "create",
                        &format!("token:{name}"),
                        role.as_str(),
                    );
                    let _ = writeln!(out, "{token}");
                    let _ = writeln!(
                        err,
                        "livefire serve: token `{name}` ({}) made; it is shown this once, keep it",
                        role.as_str()
                    );
                    Exit::Ok
                }
                Err(e) => {
                    let _ = writeln!(err, "livefire serve token create: {e}");
                    Exit::Invalid
                }
            }
        }
        TokenCommand::List => match store.tokens() {
            Ok(rows) => {
                for t in rows {
                    let state = if t.revoked {
                        "revoked".to_owned()
                    } else if let Some(e) = t.expires {
                        if e <= auth::unix_now() {
                            "expired".to_owned()
                        } else {
                            format!("expires in {}h", (e - auth::unix_now()) / 3600)
                        }
                    } else {
                        "no expiry".to_owned()
                    };
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{state}",
                        t.name,
                        t.role.as_str(),
                        t.created
                    );
                }
                Exit::Ok
            }
            Err(e) => {
                let _ = writeln!(err, "livefire serve token list: {e}");
                Exit::Invalid
            }
        },
        TokenCommand::Revoke { name } => match store.revoke_token(name) {
            Ok(true) => {
                let _ = writeln!(out, "revoked token `{name}`");
                Exit::Ok
            }
            Ok(false) => {
                let _ = writeln!(
                    err,
                    "livefire serve token revoke: no token named `{name}`: `livefire serve token list` shows them"
                );
                Exit::Invalid
            }
            Err(e) => {
                let _ = writeln!(err, "livefire serve token revoke: {e}");
                Exit::Invalid
            }
        },
    }
}

fn serve(
    args: &ServeArgs,
    exe: PathBuf,
    data: PathBuf,
    store: Arc<Store>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => match server::tls_acceptor(c, k) {
            Ok(a) => Some(a),
            Err(e) => {
                let _ = writeln!(err, "livefire serve: {e}");
                return Exit::Invalid;
            }
        },
        _ => None,
    };
    let addr = match server::listen_addr(&args.listen, tls.is_some(), args.allow_plain_http) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "livefire serve: {e}");
            return Exit::Invalid;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "livefire serve: cannot start the runtime: {e}");
            return Exit::Invalid;
        }
    };
    rt.block_on(async move {
        let runner = Arc::new(runs::Runner::new(exe, data.clone(), store.clone()));
        // A previous server that died mid-run left its runs' undo records: roll back
        // before taking new runs, and say so.
        let recovery = runner.recover_previous().await;
        for line in &recovery.lines {
            let _ = writeln!(err, "livefire serve: {line}");
        }
        // Schedules: what was missed while the server was down is said, not run late.
        for line in schedule::missed_at_start(&store)
            .into_iter()
            .chain(approval::waiting_again_at_start(&store))
        {
            let _ = writeln!(err, "livefire serve: {line}");
        }
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(source) => {
                let e = server::ListenError::Bind {
                    addr: args.listen.clone(),
                    source,
                };
                let _ = writeln!(err, "livefire serve: {e}");
                return Exit::Invalid;
            }
        };
        let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let _ = writeln!(
            out,
            "livefire serve: {scheme}://{bound}/ (data {}, livefire home {}); Ctrl-C to stop",
            data.display(),
            livefire_engine::home::home().display()
        );
        let _ = out.flush();
        if store.tokens().map(|t| t.is_empty()).unwrap_or(false) {
            let _ = writeln!(
                err,
                "livefire serve: no token yet: make one with `livefire serve token create --role admin`"
            );
        }
        let approvals = approval::Policy {
            required: args.require_approval,
            expires: args.approval_expires,
        };
        let scheduler = tokio::spawn(schedule::run(store.clone(), runner.clone(), approvals));
        let app = Arc::new(api::App {
            store: store.clone(),
            runner: runner.clone(),
            tls: tls.is_some(),
            approvals,
        });
        let handler = move |req| api::handle(app.clone(), req);
        server::serve(listener, tls, handler, shutdown_signal()).await;
        scheduler.abort();
        let _ = writeln!(err, "livefire serve: stopping: halting the runs still going (each rolls back)");
        runner.halt_all(Duration::from_secs(120)).await;
        Exit::Ok
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
