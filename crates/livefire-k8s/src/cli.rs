//! `livefire k8s ...`: the Kubernetes back end's own commands. `render` prints the
//! objects a split run would apply, as YAML, for review or GitOps; it asks no cluster.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand, ValueEnum};
use livefire_core::exit::Exit;

use crate::render::{self, Options, Spread};
use crate::ship::Split;

/// How far ahead `render` puts the start when `--start-at` is not given.
pub const RENDER_LEAD: Duration = Duration::from_secs(120);

/// `livefire k8s` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum K8sCommand {
    /// Print the ConfigMap and Indexed Job of a split run as YAML (kubectl apply -f -);
    /// nothing is sent to a cluster.
    Render(RenderArgs),
}

/// Flags of `livefire k8s render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The experiment file (YAML or JSON).
    pub file: PathBuf,
    /// How many segments (pods) share the loads and campaigns.
    #[arg(long, value_name = "N")]
    pub segments: u32,
    /// The container image with livefire in it (see the repository's Dockerfile).
    #[arg(long, value_name = "IMAGE", default_value_t = render::default_image())]
    pub image: String,
    /// The namespace of the objects.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    pub namespace: String,
    /// The shared start, in UTC (2026-12-03T14:00:00Z); default: two minutes from now.
    #[arg(long, value_name = "TIME", value_parser = parse_start)]
    pub start_at: Option<SystemTime>,
    /// The run id the objects are named and labelled by (default: time and title).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// CPU each pod asks for.
    #[arg(long, default_value = "500m")]
    pub cpu: String,
    /// Memory each pod asks for and may use.
    #[arg(long, default_value = "512Mi")]
    pub memory: String,
    /// The Secret whose keys are the `${env:NAME}` the experiment reads.
    #[arg(long, value_name = "SECRET")]
    pub env_secret: Option<String>,
    /// `soft`: spread pods over nodes when possible; `hard`: at most one more pod on a
    /// node than on any other, or pods wait.
    #[arg(long, value_enum, default_value_t = SpreadArg::Soft)]
    pub spread: SpreadArg,
    /// Set a variable used as `${name}` (repeatable); the pods get it too.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = livefire_spec::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Resolve the file for this environment of its `environments:`.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

/// `--spread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpreadArg {
    Soft,
    Hard,
}

/// Runs a `livefire k8s` subcommand; output to `out`, errors to `err`.
pub fn command(cmd: &K8sCommand, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    match cmd {
        K8sCommand::Render(args) => match render_yaml(args, SystemTime::now()) {
            Ok(yaml) => match out.write_all(yaml.as_bytes()) {
                Ok(()) => Exit::Ok,
                Err(e) => {
                    let _ = writeln!(err, "error: cannot write the manifests: {e}");
                    Exit::Invalid
                }
            },
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                Exit::Invalid
            }
        },
    }
}

/// Why `render` printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RenderCommandError {
    #[error("{0}")]
    Plan(#[from] livefire_engine::plan::PlanError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Ship(#[from] crate::ship::ShipError),
    #[error("{0}")]
    Render(#[from] render::RenderError),
}

/// The YAML `livefire k8s render` prints, rendered at `now`.
pub fn render_yaml(args: &RenderArgs, now: SystemTime) -> Result<String, RenderCommandError> {
    if args.segments == 0 {
        // Said before the file is read: nothing about the file can make N = 0 work.
        return Err(render::RenderError::NoSegments.into());
    }
    let text = std::fs::read_to_string(&args.file).map_err(|source| RenderCommandError::Read {
        path: args.file.display().to_string(),
        source,
    })?;
    let plan = livefire_engine::plan::plan(&args.file, &args.vars, args.env.as_deref())?;
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            livefire_engine::clock::stamp_now(),
            crate::names::object_name(&plan.title).trim_start_matches("livefire-")
        )
    });
    let run = Split {
        plan: &plan,
        text: &text,
        run_id: &run_id,
        count: args.segments,
        start_at: args.start_at.unwrap_or(now + RENDER_LEAD),
        vars: &args.vars,
        env: args.env.as_deref(),
    }
    .run()?;
    let options = Options {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        env_secret: args.env_secret.clone(),
        spread: match args.spread {
            SpreadArg::Soft => Spread::Soft,
            SpreadArg::Hard => Spread::Hard,
        },
    };
    Ok(render::render(&run, &options, now)?.to_yaml())
}

/// `--start-at`: an RFC 3339 time (`2026-12-03T14:00:00Z`).
pub fn parse_start(s: &str) -> Result<SystemTime, String> {
    let ts: k8s_openapi::jiff::Timestamp = s
        .parse()
        .map_err(|_| format!("`{s}` is not a time: write it in UTC as 2026-12-03T14:00:00Z"))?;
    Ok(SystemTime::from(ts))
}

/// The flags of `livefire run --segments N --on kubernetes` (the binary flattens them
/// into `run`'s).
#[derive(Debug, Clone, Args)]
pub struct K8sRunArgs {
    /// --on kubernetes: the kubeconfig context (default: the current one, or the
    /// in-cluster configuration).
    #[arg(long = "k8s-context", value_name = "CONTEXT")]
    pub context: Option<String>,
    /// --on kubernetes: the namespace (default: the context's).
    #[arg(long = "k8s-namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// --on kubernetes: the container image with livefire in it.
    #[arg(long = "k8s-image", value_name = "IMAGE", default_value_t = render::default_image())]
    pub image: String,
    /// --on kubernetes: CPU each pod asks for.
    #[arg(long = "k8s-cpu", value_name = "CPU", default_value = "500m")]
    pub cpu: String,
    /// --on kubernetes: memory each pod asks for and may use.
    #[arg(long = "k8s-memory", value_name = "MEMORY", default_value = "512Mi")]
    pub memory: String,
    /// --on kubernetes: the Secret whose keys are the `${env:NAME}` the file reads.
    #[arg(long = "k8s-env-secret", value_name = "SECRET")]
    pub env_secret: Option<String>,
    /// --on kubernetes: `soft` or `hard` spreading of the pods over nodes.
    #[arg(long = "k8s-spread", value_enum, default_value_t = SpreadArg::Soft)]
    pub spread: SpreadArg,
}

impl K8sRunArgs {
    /// The launcher these flags describe.
    pub fn launcher(&self) -> crate::launcher::KubernetesLauncher {
        let target = crate::launcher::Target {
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        };
        let options = Options {
            namespace: self.namespace.clone().unwrap_or_else(|| "default".into()),
            image: self.image.clone(),
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            env_secret: self.env_secret.clone(),
            spread: match self.spread {
                SpreadArg::Soft => Spread::Soft,
                SpreadArg::Hard => Spread::Hard,
            },
        };
        crate::launcher::KubernetesLauncher::new(target, options)
    }
}
