//! Access rules: who may pull, push and delete in which repositories. Pure data and
//! matching, no I/O, so every case is a table test.
//!
//! A rule names a repository (`team-a/app`) or a prefix (`team-a/*`, `*` for all). For a
//! repository the most specific matching rule decides: an exact name beats any prefix, a
//! longer prefix beats a shorter one. No matching rule means no access (deny by default).

use std::fmt;

use serde::Deserialize;

/// One thing a caller may do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and push manifests and tags.
    Push,
    /// Delete manifests, tags and blob links.
    Delete,
}

impl Action {
    /// Every action, in the order scopes list them.
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The action as a token scope spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
        }
    }

    /// Parses a scope's action name; `None` for one we do not know (ignored, as the
    /// token spec asks).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A set of actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions(u8);

impl Actions {
    /// No action at all.
    pub const NONE: Actions = Actions(0);
    /// Pull, push and delete.
    pub const ALL: Actions = Actions(0b111);

    /// Just `action`.
    pub fn only(action: Action) -> Self {
        Self(1 << action as u8)
    }

    /// Whether `action` is in the set.
    pub fn has(self, action: Action) -> bool {
        self.0 & Self::only(action).0 != 0
    }

    /// Both sets together.
    pub fn union(self, other: Actions) -> Self {
        Self(self.0 | other.0)
    }

    /// What both sets share.
    pub fn intersect(self, other: Actions) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in scope order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.has(*a))
    }
}

impl FromIterator<Action> for Actions {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Self::NONE, |s, a| s.union(Self::only(a)))
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Action::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// No credentials.
    Anonymous,
    /// A user of the users file.
    User(String),
}

/// In a rule's lists: everyone, anonymous callers included.
pub const EVERYONE: &str = "*";
/// In a rule's lists: every user of the users file.
pub const ALL_USERS: &str = "@users";

/// A repository pattern: an exact name, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Pattern(String);

impl Pattern {
    /// The pattern as written.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// How specifically the pattern matches `repo`: `None` if not at all; an exact name
    /// ranks above every prefix, a longer prefix above a shorter one.
    pub fn rank(&self, repo: &str) -> Option<usize> {
        match self.0.strip_suffix('*') {
            Some(prefix) => repo.starts_with(prefix).then_some(prefix.len()),
            None => (self.0 == repo).then_some(usize::MAX),
        }
    }

    /// The rank it gives a repository it matches (see [`Pattern::rank`]).
    pub fn specificity(&self) -> usize {
        self.0.strip_suffix('*').map_or(usize::MAX, str::len)
    }

    /// Whether some valid repository name (lowercase letters, digits, `._-/`) can match:
    /// a pattern with other characters never applies, and static hosts leave it out.
    pub fn can_match_a_name(&self) -> bool {
        let body = self.0.strip_suffix('*').unwrap_or(&self.0);
        body.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/'))
    }

    /// Whether the pattern matches `repo`.
    pub fn matches(&self, repo: &str) -> bool {
        self.rank(repo).is_some()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One `[[auth.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The repositories it governs.
    pub repository: Pattern,
    /// Who may pull: user names, [`ALL_USERS`], [`EVERYONE`].
    #[serde(default)]
    pub pull: Vec<String>,
    /// Who may push.
    #[serde(default)]
    pub push: Vec<String>,
    /// Who may delete.
    #[serde(default)]
    pub delete: Vec<String>,
}

impl Rule {
    fn grants(&self, subject: &Subject) -> Actions {
        let listed = |who: &[String]| {
            who.iter().any(|w| match (w.as_str(), subject) {
                (EVERYONE, _) => true,
                (ALL_USERS, Subject::User(_)) => true,
                (name, Subject::User(u)) => name == u,
                _ => false,
            })
        };
        [
            (Action::Pull, &self.pull),
            (Action::Push, &self.push),
            (Action::Delete, &self.delete),
        ]
        .into_iter()
        .filter(|(_, who)| listed(who))
        .map(|(a, _)| a)
        .collect()
    }
}

/// The rules of a server, and its administrators (every action everywhere).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The rules, in any order (specificity decides, not position).
    pub rules: Vec<Rule>,
    /// Users who may do anything, list the catalog included.
    pub admins: Vec<String>,
}

impl Rules {
    /// What `subject` may do in `repo`.
    pub fn actions(&self, subject: &Subject, repo: &str) -> Actions {
        if self.is_admin(subject) {
            return Actions::ALL;
        }
        self.rules
            .iter()
            .filter_map(|r| r.repository.rank(repo).map(|rank| (rank, r)))
            .max_by_key(|(rank, _)| *rank)
            .map_or(Actions::NONE, |(_, r)| r.grants(subject))
    }

    /// Whether `subject` is an administrator.
    pub fn is_admin(&self, subject: &Subject) -> bool {
        matches!(subject, Subject::User(u) if self.admins.contains(u))
    }

    /// Whether anonymous callers may pull, per pattern, as a static host needs it to
    /// decide exactly as [`Rules::actions`] does: one entry per distinct pattern that can
    /// match a repository name (of duplicates, the later rule, which `actions` picks),
    /// most specific first. A repository is public when the first entry matching it says
    /// `true`; when none matches, it is not.
    pub fn anonymous_pull_table(&self) -> Vec<(&Pattern, bool)> {
        let mut table: Vec<(&Pattern, bool)> = Vec::new();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.repository.can_match_a_name())
        {
            let public = rule.grants(&Subject::Anonymous).has(Action::Pull);
            table.retain(|(p, _)| *p != &rule.repository);
            table.push((&rule.repository, public));
        }
        table.sort_by_key(|(p, _)| std::cmp::Reverse(p.specificity()));
        table
    }

    /// The patterns of [`Rules::anonymous_pull_table`] that are public (`true`) or not.
    pub fn patterns_where_anonymous_pull_is(&self, public: bool) -> Vec<String> {
        self.anonymous_pull_table()
            .into_iter()
            .filter(|(_, p)| *p == public)
            .map(|(p, _)| p.as_str().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(repo: &str, pull: &[&str], push: &[&str]) -> Rule {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect();
        Rule {
            repository: Pattern::new(repo),
            pull: v(pull),
            push: v(push),
            delete: v(push),
        }
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let rules = Rules {
            rules: vec![
                rule("*", &[], &[]),
                rule("public/*", &["*"], &["alice"]),
                rule("team-a/*", &["@users"], &["alice"]),
                rule("team-a/secret", &["bob"], &["bob"]),
            ],
            admins: vec!["root".into()],
        };
        let alice = Subject::User("alice".into());
        let bob = Subject::User("bob".into());
        let anon = Subject::Anonymous;
        let pull = Actions::only(Action::Pull);
        let all = Actions::ALL;
        let table = [
            (&anon, "public/x", pull),
            (&anon, "team-a/app", Actions::NONE),
            (&anon, "other", Actions::NONE),
            (&alice, "public/x", all),
            (&alice, "team-a/app", all),
            (&bob, "team-a/app", pull),
            (&alice, "team-a/secret", Actions::NONE),
            (&bob, "team-a/secret", all),
            (&Subject::User("root".into()), "anything", all),
        ];
        for (who, repo, want) in table {
            assert_eq!(rules.actions(who, repo), want, "{who:?} on {repo}");
        }
        assert_eq!(
            rules.patterns_where_anonymous_pull_is(true),
            vec!["public/*".to_owned()]
        );
    }

    /// The table static hosts get agrees with `actions` for anonymous callers: most
    /// specific first, a later duplicate replacing an earlier one, patterns no name can
    /// match left out.
    #[test]
    fn the_anonymous_pull_table_decides_as_actions_do() {
        let rules = Rules {
            rules: vec![
                rule("public/*", &["*"], &[]),
                rule("public/secret/*", &["alice"], &[]),
                rule("public/secret/open", &["*"], &[]),
                rule("pub*", &[], &[]),
                rule("dup", &[], &[]),
                rule("dup", &["*"], &[]),
                rule("Upper/*", &["*"], &[]),
                rule("*", &["@users"], &[]),
            ],
            admins: vec![],
        };
        let table: Vec<(&str, bool)> = rules
            .anonymous_pull_table()
            .into_iter()
            .map(|(p, b)| (p.as_str(), b))
            .collect();
        assert_eq!(
            table,
            [
                ("public/secret/open", true),
                ("dup", true),
                ("public/secret/*", false),
                ("public/*", true),
                ("pub*", false),
                ("*", false),
            ]
        );
        for repo in [
            "public/x",
            "public/secret/x",
            "public/secret/open",
            "public/secret/open/x",
            "pubx",
            "dup",
            "dupe",
            "other",
        ] {
            let by_actions = rules.actions(&Subject::Anonymous, repo).has(Action::Pull);
            let by_table = table
                .iter()
                .find(|(p, _)| Pattern::new(*p).matches(repo))
                .is_some_and(|(_, public)| *public);
            assert_eq!(by_table, by_actions, "{repo}");
        }
    }

    #[test]
    fn no_rule_means_no_access() {
        let rules = Rules::default();
        assert!(rules.actions(&Subject::Anonymous, "a").is_empty());
        assert!(rules.actions(&Subject::User("x".into()), "a").is_empty());
    }

    #[test]
    fn action_sets() {
        let s: Actions = [Action::Pull, Action::Delete].into_iter().collect();
        assert_eq!(s.to_string(), "pull,delete");
        assert!(s.has(Action::Pull) && !s.has(Action::Push));
        assert_eq!(s.intersect(Actions::only(Action::Push)), Actions::NONE);
        assert_eq!(Action::parse("push"), Some(Action::Push));
        assert_eq!(Action::parse("*"), None);
    }
}
