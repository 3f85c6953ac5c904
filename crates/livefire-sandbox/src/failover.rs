//! `livefire sandbox failover`: the helper that gives "kill the primary" a real
//! recovery path. It asks both servers what they are every 250 ms; when no server has
//! answered as a read-write primary for `after`, it promotes a standby that answers.
//! It fences too: once it has promoted a node, a former primary that comes back as a
//! second read-write primary (it was only paused) is stopped at once, so writes never
//! go to two primaries. It takes the sandbox lock around each decision, so it never
//! races `livefire sandbox rejoin`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::SandboxError;
use crate::pg::{self, Role};
use crate::sandbox::{Lock, clusters};
use crate::state::Sandbox;

const POLL: Duration = Duration::from_millis(250);
const ASK: Duration = Duration::from_secs(1);

/// Watches the sandbox in `dir` until killed.
pub fn watch(dir: &Path, after: Duration) -> Result<(), SandboxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SandboxError::io("cannot start a runtime".into(), e))?;
    let sb = Sandbox::load(dir)?.ok_or_else(|| SandboxError::NotUp(dir.to_owned()))?;
    let who = pg::RunAs::detect()?;
    let nodes = clusters(&sb)?;
    println!(
        "failover helper watching {} (promotes a standby after {} ms without a primary)",
        nodes
            .iter()
            .map(|n| format!("{} on port {}", n.name, n.port))
            .collect::<Vec<_>>()
            .join(", "),
        after.as_millis()
    );
    let mut last_primary = Instant::now();
    // The node this helper promoted: the one to keep when two claim to be primary.
    let mut promoted: Option<String> = None;
    loop {
        std::thread::sleep(POLL);
        let roles: Vec<Option<Role>> = nodes
            .iter()
            .map(|n| rt.block_on(pg::role(n.port, ASK)))
            .collect();
        let primaries: Vec<usize> = (0..nodes.len())
            .filter(|&i| roles[i] == Some(Role::Primary))
            .collect();
        if primaries.len() > 1 {
            if let Some(keep) = &promoted {
                for &i in &primaries {
                    if &nodes[i].name != keep {
                        let _lock = Lock::take(&sb)?;
                        println!(
                            "fencing: {} answers as a second primary; stopping it (bring it back with `livefire sandbox rejoin {}`)",
                            nodes[i].name, nodes[i].name
                        );
                        if let Err(e) = nodes[i].stop(&who) {
                            println!("fencing {} failed: {e}", nodes[i].name);
                        }
                    }
                }
            }
            last_primary = Instant::now();
            continue;
        }
        if !primaries.is_empty() {
            last_primary = Instant::now();
            continue;
        }
        if last_primary.elapsed() < after {
            continue;
        }
        let Some(standby) = (0..nodes.len()).find(|&i| roles[i] == Some(Role::Standby)) else {
            continue;
        };
        let _lock = Lock::take(&sb)?;
        // Ask again under the lock: a rejoin may have just brought a primary back.
        let again: Vec<Option<Role>> = nodes
            .iter()
            .map(|n| rt.block_on(pg::role(n.port, ASK)))
            .collect();
        if again.contains(&Some(Role::Primary)) {
            last_primary = Instant::now();
            continue;
        }
        let node = &nodes[standby];
        println!(
            "no primary for {} ms: promoting {} (port {})",
            last_primary.elapsed().as_millis(),
            node.name,
            node.port
        );
        match node.promote(&who) {
            Ok(()) => {
                println!("promoted {}", node.name);
                promoted = Some(node.name.clone());
                last_primary = Instant::now();
            }
            Err(e) => println!("promoting {} failed: {e}", node.name),
        }
    }
}
