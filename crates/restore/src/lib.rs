//! pgark-restore
