//! `voxd completions` and `voxd man`: generated from the command line
//! alone, they work with no daemon running and with a config that would
//! not even parse (so they cannot be loading it).

mod support;

use std::fs;
use std::process::Command;

use support::Home;

/// A home whose config is not TOML: any command that loads it fails.
fn home() -> Home {
    Home::new("this is [[not toml\n")
}

fn run_ok(home: &Home, args: &[&str]) -> String {
    let (ok, out, err) = home.run(args);
    assert!(ok, "voxd {args:?} failed: {err}");
    assert!(err.is_empty(), "voxd {args:?} wrote to stderr: {err}");
    out
}

#[test]
fn an_unparsable_config_fails_other_commands() {
    // The premise of the tests below: this home's config is not loadable.
    let (ok, _, err) = home().run(&["config", "show"]);
    assert!(!ok, "config show succeeded on a broken config");
    assert!(err.contains("voxd.toml"), "{err}");
}

#[test]
fn bash_completions_are_valid_bash_and_know_the_subcommands() {
    let home = home();
    let script = run_ok(&home, &["completions", "bash"]);
    for sub in ["ask", "transcribe", "serve", "completions", "man"] {
        assert!(script.contains(sub), "no {sub} in:\n{script}");
    }
    let file = home.path().join("voxd.bash");
    fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The script registers itself for voxd.
    assert!(script.contains("complete -F"), "{script}");
    assert!(script.contains("voxd"), "{script}");
}

#[test]
fn zsh_fish_elvish_and_powershell_completions_mention_ask() {
    let home = home();
    for (shell, marker) in [
        ("zsh", "#compdef voxd"),
        ("fish", "complete -c voxd"),
        ("elvish", "edit:completion:arg-completer[voxd]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = run_ok(&home, &["completions", shell]);
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in:\n{script}"
        );
        assert!(script.contains("ask"), "{shell}: no ask in:\n{script}");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let (ok, out, err) = home().run(&["completions", "tcsh"]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
    assert!(err.contains("bash"), "the error lists the shells: {err}");
    let (ok, _, err) = home().run(&["completions"]);
    assert!(!ok);
    assert!(err.contains("<SHELL>"), "{err}");
}

#[test]
fn man_prints_a_roff_page_that_documents_the_subcommands() {
    let page = run_ok(&home(), &["man"]);
    assert!(page.starts_with(".ie"), "{page}");
    assert!(page.contains("\n.TH voxd 1"), "no .TH header:\n{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in ["ask", "transcribe", "completions"] {
        assert!(
            page.contains(&format!("voxd\\-{sub}(1)")),
            "no {sub}:\n{page}"
        );
    }
    assert!(page.contains("Ask a question"), "{page}");
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let home = home();
    let dir = home.path().join("share/man/man1");
    let out = run_ok(&home, &["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.is_empty(), "{out}");
    for page in [
        "voxd.1",
        "voxd-ask.1",
        "voxd-transcribe.1",
        "voxd-config-show.1",
    ] {
        let text = fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains("\n.TH "), "{page}:\n{text}");
    }
    let ask = fs::read_to_string(dir.join("voxd-ask.1")).unwrap();
    assert!(ask.contains("Ask a question"), "{ask}");
    assert!(!dir.join("voxd-help.1").exists(), "a page for `voxd help`");
}
