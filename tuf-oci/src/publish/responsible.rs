//! The role responsible for a target: where a new target is listed.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::metadata::{SuccinctRoles, Targets};

/// Finds the role each target belongs to: the first delegated role (depth
/// first, as clients search) whose patterns match, else `targets`. It runs
/// once per target of an import, so the walk borrows the role names it
/// passes and keeps its buffers from one target to the next.
pub(super) struct RoleFinder<'s, 'a> {
    state: &'s BTreeMap<String, Cow<'a, Targets>>,
    /// When `targets` delegates to hashed bins (up to 65,536): by bin
    /// number, the bin's name where the bin exists and delegates nothing
    /// (where every walk ends, so that it can end without one).
    top_bins: Option<(&'s SuccinctRoles, Vec<Option<&'s str>>)>,
    /// The roles passed on this walk (a delegation cycle ends it).
    seen: Vec<&'s str>,
    /// The name of the bin a walk reached.
    bin_name: String,
}

impl<'s, 'a> RoleFinder<'s, 'a> {
    /// A finder over the targets roles of a state, by name.
    pub(super) fn new(state: &'s BTreeMap<String, Cow<'a, Targets>>) -> Self {
        let mut bin_name = String::new();
        let top_bins = state
            .get("targets")
            .and_then(|t| t.delegations.as_ref())
            .and_then(|d| match (&d.roles, &d.succinct_roles) {
                (None, Some(bins)) if bins.number_of_bins() <= 65_536 => Some(bins),
                _ => None,
            })
            .map(|bins| {
                let names = (0..bins.number_of_bins()).map(|bin| {
                    bins.write_bin_name(bin, &mut bin_name);
                    state
                        .get_key_value(bin_name.as_str())
                        .filter(|(_, t)| t.delegations.is_none())
                        .map(|(name, _)| name.as_str())
                });
                (bins, names.collect())
            });
        Self {
            state,
            top_bins,
            seen: Vec::new(),
            bin_name,
        }
    }

    /// The role target `name` belongs to.
    pub(super) fn find(&mut self, name: &str) -> &'s str {
        if let Some((bins, names)) = &self.top_bins
            && let Some(Some(bin)) = usize::try_from(bins.bin_number_for_target(name))
                .ok()
                .and_then(|n| names.get(n))
        {
            return bin;
        }
        let mut role: &'s str = "targets";
        self.seen.clear();
        while !self.seen.contains(&role) {
            self.seen.push(role);
            let Some(delegations) = self.state.get(role).and_then(|t| t.delegations.as_ref())
            else {
                break;
            };
            let child = match (&delegations.roles, &delegations.succinct_roles) {
                (Some(roles), _) => roles
                    .iter()
                    .find(|r| r.is_delegated_path(name))
                    .map(|r| r.name.as_str()),
                (None, Some(bins)) => {
                    bins.write_bin_name(bins.bin_number_for_target(name), &mut self.bin_name);
                    Some(self.bin_name.as_str())
                }
                (None, None) => None,
            };
            match child.and_then(|c| self.state.get_key_value(c)) {
                Some((child, _)) => role = child,
                None => break,
            }
        }
        role
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use serde_json::json;

    fn role(delegations: Option<serde_json::Value>) -> Targets {
        let mut role = json!({
            "_type": "targets",
            "spec_version": "1.0.31",
            "version": 1,
            "expires": "2030-01-01T00:00:00Z",
            "targets": {},
        });
        if let Some(d) = delegations {
            role["delegations"] = d;
        }
        serde_json::from_value(role).unwrap()
    }

    #[test]
    fn the_bin_table_finds_the_roles_the_walk_finds() {
        let bins = json!({"keys": {}, "succinct_roles": {
            "keyids": [], "threshold": 1, "bit_length": 2, "name_prefix": "bins"}});
        let onward = json!({"keys": {}, "roles": [{
            "name": "deep", "keyids": [], "threshold": 1, "terminating": false, "paths": ["*"]}]});
        let state: BTreeMap<String, Cow<'_, Targets>> = [
            ("targets", role(Some(bins))),
            ("bins-0", role(None)),
            // bins-1 is missing; bins-2 delegates on.
            ("bins-2", role(Some(onward))),
            ("deep", role(None)),
            ("bins-3", role(None)),
        ]
        .into_iter()
        .map(|(name, role)| (name.to_owned(), Cow::Owned(role)))
        .collect();
        let mut finder = RoleFinder::new(&state);
        assert!(finder.top_bins.is_some());
        let mut walk = RoleFinder {
            top_bins: None,
            ..RoleFinder::new(&state)
        };
        let mut found = BTreeSet::new();
        for i in 0..200 {
            let name = format!("t{i}");
            let role = finder.find(&name);
            assert_eq!(role, walk.find(&name), "{name}");
            found.insert(role);
        }
        assert_eq!(
            found,
            BTreeSet::from(["bins-0", "bins-3", "deep", "targets"])
        );
    }
}
