//! The `learnapp` sample database (see `fixtures/README.md`).

use crate::error::pg_error;
use crate::SandboxError;

/// DDL of the learnapp schema (all objects in `public`).
pub const LEARNAPP_SCHEMA: &str = include_str!("../../../fixtures/learnapp/schema.sql");

/// Creates the session-local generator function `pg_temp.learnapp_generate(scale)`.
pub const LEARNAPP_DATA: &str = include_str!("../../../fixtures/learnapp/generate.sql");

/// Tables a migration must get exactly right, schema-qualified.
pub const LEARNAPP_CRITICAL_TABLES: [&str; 3] = [
    "public.users",
    "public.spaced_repetition_cards",
    "public.question_attempts",
];

/// Creates the learnapp schema in the connected database and fills it with
/// deterministic data generated server-side. Scale 1 is about 10k rows;
/// rows grow linearly with the scale. The database must not already hold
/// learnapp objects.
pub async fn load_learnapp(
    client: &tokio_postgres::Client,
    scale: u32,
) -> Result<(), SandboxError> {
    let scale = i32::try_from(scale)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| {
            SandboxError::InvalidArgument(format!(
                "learnapp scale {scale} is not in 1..=2147483647"
            ))
        })?;
    client
        .batch_execute(LEARNAPP_SCHEMA)
        .await
        .map_err(|e| pg_error("creating the learnapp schema", &e))?;
    client
        .batch_execute(LEARNAPP_DATA)
        .await
        .map_err(|e| pg_error("creating the learnapp generator", &e))?;
    client
        .execute("SELECT pg_temp.learnapp_generate($1)", &[&scale])
        .await
        .map_err(|e| pg_error(format!("generating learnapp data at scale {scale}"), &e))?;
    // Realistic statistics (reltuples, relpages) matter to code that plans by table size.
    client
        .batch_execute("ANALYZE")
        .await
        .map_err(|e| pg_error("analyzing the learnapp data", &e))?;
    Ok(())
}
