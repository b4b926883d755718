//! Token scopes (`repository:team-a/app:pull,push`, `registry:catalog:*`) and the `access`
//! claim they become. Pure parsing, table-tested.

use serde::{Deserialize, Serialize};

use super::rules::{Action, Actions};

/// One entry of a token's `access` claim, as the distribution token spec spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// The actions granted (`pull`, `push`, `delete`, or `*`).
    pub actions: Vec<String>,
}

/// The type of repository scopes.
pub const REPOSITORY: &str = "repository";
/// The type of the catalog scope (`registry:catalog:*`).
pub const REGISTRY: &str = "registry";
/// The catalog's name in a `registry` scope.
pub const CATALOG: &str = "catalog";

impl ResourceAccess {
    /// A repository entry granting `actions`.
    pub fn repository(name: &str, actions: Actions) -> Self {
        Self {
            kind: REPOSITORY.to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }

    /// The catalog entry.
    pub fn catalog() -> Self {
        Self {
            kind: REGISTRY.to_owned(),
            name: CATALOG.to_owned(),
            actions: vec!["*".to_owned()],
        }
    }

    /// The repository actions named (`*` is all of them).
    pub fn actions(&self) -> Actions {
        if self.actions.iter().any(|a| a == "*") {
            return Actions::ALL;
        }
        self.actions
            .iter()
            .filter_map(|a| Action::parse(a))
            .collect()
    }
}

/// Parses `scope` values: each may hold several scopes separated by spaces (some clients
/// send one parameter that way, others repeat it). Malformed scopes are skipped, and
/// scopes of the same resource merged, so a token grants each resource once.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<ResourceAccess> {
    let mut out: Vec<ResourceAccess> = Vec::new();
    for scope in values.into_iter().flat_map(str::split_whitespace) {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        // `repository(plugin):name:pull`: the class in parentheses changes nothing here.
        let kind = kind.split('(').next().unwrap_or(kind);
        if name.is_empty() {
            continue;
        }
        let actions = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        match out.iter_mut().find(|r| r.kind == kind && r.name == name) {
            Some(r) => r.actions.extend(actions),
            None => out.push(ResourceAccess {
                kind: kind.to_owned(),
                name: name.to_owned(),
                actions: actions.collect(),
            }),
        }
    }
    for r in &mut out {
        r.actions.sort();
        r.actions.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_repeated_or_space_separated_are_all_read() {
        let got = parse([
            "repository:a/b:pull,push repository:c:pull",
            "repository:a/b:delete",
            "registry:catalog:*",
            "repository(plugin):d:pull",
            "junk",
            "repository::pull",
        ]);
        let want = [
            ("repository", "a/b", vec!["delete", "pull", "push"]),
            ("repository", "c", vec!["pull"]),
            ("registry", "catalog", vec!["*"]),
            ("repository", "d", vec!["pull"]),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (r, (kind, name, actions)) in got.iter().zip(want) {
            assert_eq!((r.kind.as_str(), r.name.as_str()), (kind, name));
            assert_eq!(r.actions, actions);
        }
        assert_eq!(got[0].actions(), Actions::ALL);
        assert_eq!(got[2].actions(), Actions::ALL);
    }
}
