//! The plan and config parsers on random input: never a panic, never a
//! write, and every refusal an exit 2 that names a line.

use crate::common::Repo;
use proptest::prelude::*;

/// A YAML document built from the keys the parsers know, nested and mixed
/// with junk: most are refused, some are valid.
fn yaml_doc() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "tasks",
        "key",
        "title",
        "spec",
        "scope",
        "priority",
        "depends_on",
        "labels",
        "max_attempts",
        "goal",
        "target",
        "test",
        "parallel",
        "roles",
        "implementer",
        "reviewer",
        "command",
        "agent",
        "timeout",
        "integrate",
        "strategy",
        "worktrees",
        "deadline",
        "review",
        "on",
        "x",
    ]);
    let scalar = prop_oneof![
        Just("main".to_string()),
        Just("0s".to_string()),
        Just("99999999999999999999d".to_string()),
        Just("\"\"".to_string()),
        Just("-1".to_string()),
        Just("~".to_string()),
        Just("*a".to_string()),
        Just("&a x".to_string()),
        Just("[".to_string()),
        Just("{a: b}".to_string()),
        "[a-z0-9 :#-]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    let leaf = (key.clone(), scalar).prop_map(|(k, v)| format!("{k}: {v}\n"));
    leaf.prop_recursive(4, 32, 6, move |inner| {
        (
            key.clone(),
            prop::collection::vec(inner, 1..4),
            any::<bool>(),
        )
            .prop_map(|(k, children, listed)| {
                let mut out = format!("{k}:\n");
                for child in children {
                    for (i, line) in child.lines().enumerate() {
                        let dash = if listed && i == 0 { "- " } else { "  " };
                        out.push_str(&format!("  {dash}{line}\n"));
                    }
                }
                out
            })
    })
}

/// Bytes: random ones, or a document with a random byte spliced in.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        yaml_doc().prop_map(String::into_bytes),
        (yaml_doc(), any::<u8>(), any::<prop::sample::Index>()).prop_map(|(doc, byte, at)| {
            let mut bytes = doc.into_bytes();
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
            bytes
        }),
    ]
}

/// Whether `err` names `file` and a line: `file:N: `.
fn names_a_line(err: &str, file: &str) -> bool {
    err.lines().any(|line| {
        line.split_once(&format!("{file}:"))
            .and_then(|(_, rest)| rest.split_once(": "))
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_parsers_never_panic_and_every_refusal_has_a_line(bytes in input()) {
        let text = match git_agent::model::yaml::decode(&bytes) {
            Ok(text) => text,
            Err(e) => {
                prop_assert!(e.line >= 1);
                return Ok(());
            }
        };
        let lines = text.lines().count() + 1;
        if let Err(e) = git_agent::model::plan::parse("p", text, &|_| None) {
            prop_assert!((1..=lines).contains(&e.line), "{e} of {lines} lines");
        }
        if let Err(e) = git_agent::agent::config::parse("c", text) {
            prop_assert!((1..=lines).contains(&e.line), "{e} of {lines} lines");
        }
    }
}

proptest! {
    // Each case runs the binary twice: fewer cases, the same properties.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_binary_refuses_bad_plans_and_configs_with_exit_2_and_writes_nothing(
        plan in input(),
        config in input(),
    ) {
        let repo = Repo::new();
        std::fs::write(repo.path().join("plan.yaml"), &plan).unwrap();
        let out = repo.run(&["plan", "--file", "plan.yaml"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        prop_assert!(!err.contains("panicked"), "{err}");
        match out.status.code() {
            Some(0) => {}
            Some(2) => {
                prop_assert!(names_a_line(&err, "plan.yaml"), "{err}");
                prop_assert!(repo.agent_refs().is_empty(), "a refused plan wrote refs");
            }
            code => prop_assert!(false, "exit {code:?}: {err}"),
        }

        let before = repo.agent_refs();
        std::fs::write(repo.path().join(".git-agent.yaml"), &config).unwrap();
        let out = repo.run(&["task", "add", "A task"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        prop_assert!(!err.contains("panicked"), "{err}");
        match out.status.code() {
            Some(0) => {}
            Some(2) => {
                prop_assert!(names_a_line(&err, ".git-agent.yaml"), "{err}");
                prop_assert_eq!(repo.agent_refs(), before, "a refused config wrote refs");
            }
            code => prop_assert!(false, "exit {code:?}: {err}"),
        }
    }
}
