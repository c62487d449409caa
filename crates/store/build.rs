// The migrations are embedded by `sqlx::migrate!`; without this a changed or added migration
// file would not rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
