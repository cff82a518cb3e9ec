//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!`
//! embeds the migration files, and cargo cannot see them otherwise (seen:
//! a dev build that kept applying the migrations it was first built with).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
