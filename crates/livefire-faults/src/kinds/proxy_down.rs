//! `proxy.down`: the proxy refuses new connections and cuts open ones (Toxiproxy's
//! `enabled: false`); the undo record enables it again.
//! Verify: the proxy says it is disabled; clean once it is enabled.

use livefire_core::undo::{ProxyOwner, UndoRecord};
use livefire_spec::TargetOnly;

use super::proxy_target;
use crate::proxy::{self, Change};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "proxy.down";

pub(crate) struct Down<'a>(pub &'a TargetOnly);

impl Kind for Down<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        proxy_target(targets, &self.0.target, KIND).map(drop)
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let (owner, proxy) = proxy_target(targets, &self.0.target, KIND)?;
        let undo = UndoRecord::ProxyEnable {
            owner: owner.clone(),
            proxy: proxy.clone(),
        };
        Ok(Prepared::new(
            KIND,
            &self.0.target,
            Some(undo.clone()),
            vec![undo.resource()],
            Disabled { owner, proxy },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Disabled {
    owner: ProxyOwner,
    proxy: String,
}

impl Action for Disabled {
    fn apply(&self, cx: &Cx<'_>) -> Result<String, FaultError> {
        Ok(proxy::apply(
            &self.owner,
            &self.proxy,
            &Change::Down,
            cx.live,
        )?)
    }

    fn verify(&self, cx: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let state = proxy::state(&self.owner, &self.proxy, cx.live)?;
        let enabled = state["enabled"].as_bool().unwrap_or(false);
        Ok(Some(Seen {
            applied: !enabled,
            clean: enabled,
            detail: format!(
                "proxy `{}` is {}",
                self.proxy,
                if enabled { "enabled" } else { "disabled" }
            ),
        }))
    }
}
