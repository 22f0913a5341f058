//! pgark-sandbox
