//! The layering of `docs/architecture.md`, checked: every `crate::…` path
//! in a module's code (comments aside) must name a layer that module may
//! use. A new import across a boundary fails here with the file and line.

use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules below the core: the services and foundations.
const SERVICES: &[&str] = &[
    "audio",
    "config",
    "conversation",
    "engine",
    "error",
    "events",
    "folders",
    "listen",
    "llm",
    "metrics",
    "models",
    "onnx",
    "private",
    "rag",
    "service",
    "speak",
    "stt",
    "vision",
];

/// What a folder (or file) of `src/` must not name.
fn forbidden(module: &str) -> &'static [&'static str] {
    match module {
        // The core: no door, no wire type, no client, no composition root.
        "assistant" => &["doors", "api", "cli", "daemon"],
        // The wire types: the core and the services, never a door.
        "api" => &["doors", "cli", "daemon"],
        "doors" => &["cli", "daemon"],
        m if SERVICES.contains(&m) => &["assistant", "api", "doors", "cli", "daemon"],
        _ => &[],
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module names that `line` reaches through `crate::`.
fn crate_paths(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .map(|(i, _)| {
            line[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// `(file:line, the import)` of every path in `src/<module>` that its layer
/// forbids.
fn violations(src: &Path, module: &str) -> Vec<String> {
    let mut files = Vec::new();
    let dir = src.join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    } else {
        files.push(src.join(format!("{module}.rs")));
    }
    let banned = forbidden(module);
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for target in crate_paths(line) {
                if banned.contains(&target.as_str()) {
                    found.push(format!(
                        "{}:{}: {module} must not use crate::{target}: {}",
                        file.strip_prefix(src).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: Vec<&str> = SERVICES.to_vec();
    modules.extend(["assistant", "api", "doors"]);
    let mut found = Vec::new();
    for module in &modules {
        assert!(
            src.join(module).is_dir() || src.join(format!("{module}.rs")).is_file(),
            "src/{module} is gone: update tests/architecture.rs and docs/architecture.md"
        );
        found.extend(violations(&src, module));
    }
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known: Vec<&str> = SERVICES
        .iter()
        .copied()
        .chain(["assistant", "api", "doors", "cli", "daemon", "lib", "main"])
        .collect();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            known.contains(&name.as_str()),
            "src/{name} has no layer: add it to tests/architecture.rs and docs/architecture.md"
        );
    }
}

#[test]
fn a_door_reaches_another_door_only_through_the_command_set() {
    let doors = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doors");
    let mut found = Vec::new();
    for entry in fs::read_dir(&doors).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let door = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (i, _) in line.match_indices("crate::doors::") {
                    let other: String = line[i + "crate::doors::".len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if other != door && other != "commands" {
                        found.push(format!(
                            "doors/{door}/{}:{}: {}",
                            file.display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a door imports another door:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_violation() {
    assert_eq!(
        crate_paths("use crate::doors::commands::Context; let x = crate::api::ApiError::x;"),
        ["doors", "api"]
    );
    assert!(forbidden("rag").contains(&"doors"));
    assert!(forbidden("assistant").contains(&"api"));
}
