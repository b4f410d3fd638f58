//! The typed schema (`shared/src/schema.rs`) is what `diesel print-schema` makes of the
//! migrated database: a migration that changes a table without regenerating it fails here.

use mmf_tests::fresh_db;
use std::path::Path;
use std::process::Command;

#[tokio::test]
async fn schema_rs_matches_the_migrations() {
    let db = fresh_db().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let diesel = std::env::var("HOME")
        .map(|h| Path::new(&h).join(".cargo/bin/diesel"))
        .ok()
        .filter(|p| p.exists())
        .expect("diesel CLI missing: scripts/test.sh installs it (cargo install diesel_cli)");
    let out = Command::new(diesel)
        .args(["print-schema", "--database-url", &db.url])
        .current_dir(&root)
        .output()
        .expect("run diesel print-schema");
    assert!(
        out.status.success(),
        "diesel print-schema: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let checked_in = std::fs::read_to_string(root.join("shared/src/schema.rs")).unwrap();
    assert!(
        generated == checked_in,
        "shared/src/schema.rs is stale: run `diesel print-schema --database-url <migrated db> > shared/src/schema.rs`"
    );
}
