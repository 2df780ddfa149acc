//! Seeing into a repository: [`overview`] (every role at a glance) and
//! [`diagnose`] (the client workflow step by step, the first failure
//! explained in plain words, and what will fail soon).

mod doctor;
mod overview;

pub use doctor::{Diagnosis, Finding, Step, diagnose};
pub use overview::{KeyView, Overview, RoleView, SignatureView, overview};
