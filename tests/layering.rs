//! The modules of src/ form no import cycle: each file's `use crate::…`
//! (and `crate::…` paths) name modules that never lead back to it. A cycle
//! is where one idea has leaked into another's file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every .rs file under `dir`, with the top-level module it belongs to
/// (`src/token/v2.rs` belongs to `token`).
fn sources(dir: &Path, module: Option<&str>, found: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            sources(&path, Some(module.unwrap_or(&name)), found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push((module.unwrap_or(&name).to_string(), path));
        }
    }
}

/// Module name -> the crate modules its files refer to.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in files {
        let text = std::fs::read_to_string(&path).expect("a source file");
        // Test code may reach anywhere; only what the module itself uses counts.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let used: BTreeSet<String> = code
            .split("crate::")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty() && *name != module)
            .collect();
        graph.entry(module).or_default().extend(used);
    }
    graph
}

fn reaches(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty").clone();
        for next in graph.get(&last).into_iter().flatten() {
            if next == to {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn src_has_no_import_cycle() {
    let graph = imports();
    assert!(graph.len() > 10, "read only {} modules", graph.len());
    for module in graph.keys().filter(|m| *m != "lib") {
        if let Some(cycle) = reaches(&graph, module, module) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn errors_depend_on_nothing() {
    let graph = imports();
    assert_eq!(graph.get("error"), Some(&BTreeSet::new()));
}
