//! The verification snippets in `mock/README.md` are code a client developer copies: each
//! is extracted from the README and run (Python, Node) against a delivery signed the way
//! the mock signs, and against the same delivery tampered with.

use std::path::Path;
use std::process::Command;

use batchproof::webhook::signing;

/// The first fenced block of `lang` in mock/README.md.
fn snippet(lang: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/README.md"))
            .unwrap();
    let start = readme
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no ```{lang} block in mock/README.md"))
        + lang.len()
        + 4;
    let len = readme[start..].find("```").expect("a closed block");
    readme[start..start + len].to_string()
}

/// Runs `program file` and returns its stdout; the test fails when the interpreter is
/// missing (CI installs both).
fn run(program: &str, file: &Path) -> String {
    let out = Command::new(program)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn case() -> (String, String, String, String) {
    let secret = "wss_docs_snippet_secret".to_string();
    let body = r#"{"eventId":"evt_1","eventType":"workflow_run.completed","payload":{"id":"workflow_run_1"}}"#;
    let ts = chrono::Utc::now().timestamp();
    let signature = signing::sign(&secret, ts, body.as_bytes());
    (secret, ts.to_string(), signature, body.to_string())
}

#[test]
fn the_python_verification_snippet_accepts_a_real_signature_and_refuses_a_tampered_body() {
    let (secret, ts, sig, body) = case();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verify.py");
    let program = format!(
        "{}\nh = {{'x-extend-request-timestamp': {ts:?}, 'x-extend-request-signature': {sig:?}}}\nprint(verify({secret:?}, h, {body:?}.encode()), verify({secret:?}, h, {tampered:?}.encode()))\n",
        snippet("python"),
        tampered = body.replace("completed", "failed"),
    );
    std::fs::write(&file, program).unwrap();
    assert_eq!(run("python3", &file), "True False");
}

#[test]
fn the_node_verification_snippet_accepts_a_real_signature_and_refuses_a_tampered_body() {
    let (secret, ts, sig, body) = case();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verify.js");
    let program = format!(
        "{}\nconst h = {{'x-extend-request-timestamp': {ts:?}, 'x-extend-request-signature': {sig:?}}};\nconsole.log(verify({secret:?}, h, Buffer.from({body:?})), verify({secret:?}, h, Buffer.from({tampered:?})));\n",
        snippet("js"),
        tampered = body.replace("completed", "failed"),
    );
    std::fs::write(&file, program).unwrap();
    assert_eq!(run("node", &file), "true false");
}
